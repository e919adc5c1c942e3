package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/chserver"
	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// chAddr is the ClickHouse server the tests use: MCPWATCH_TEST_CLICKHOUSE
// (host:port, native) or one started for this test binary.
var chAddr string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	chAddr = os.Getenv("MCPWATCH_TEST_CLICKHOUSE")
	if chAddr == "" {
		dir, err := os.MkdirTemp("", "mcpwatch-plugin-ch-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := chserver.Start(context.Background(), dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer srv.Stop()
		chAddr = srv.Addr
	}
	return m.Run()
}

type fixture struct {
	app *App
	sum *seed.Summary
	db  string
}

// seeded creates a fresh database with the schema and the seed data set and
// an App reading it; both are removed at the end of the test.
func seeded(t *testing.T, st Settings) *fixture {
	t.Helper()
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_test")
	sum, err := seed.Seed(ctx, conn, db, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st.ClickHouseAddress, st.Database = chAddr, db
	if st.Username == "" {
		st.Username = "default"
	}
	if st.TimeoutSeconds == 0 {
		st.TimeoutSeconds = 30
	}
	app, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Dispose)
	return &fixture{app: app, sum: sum, db: db}
}

// scope is a 3-hour window around the seeded data.
func (f *fixture) scope() Filter {
	return Filter{From: f.sum.Base.Add(-3 * time.Hour), To: f.sum.Base.Add(time.Minute)}
}

// freshDatabase creates a database named prefix_<random> with the schema
// and opens a connection to it; both go away at the end of the test.
func freshDatabase(t *testing.T, prefix string) (string, driver.Conn) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := prefix + "_" + hex.EncodeToString(b)
	if err := chserver.CreateSchema(context.Background(), chAddr, db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chserver.Exec(context.Background(), chAddr, "DROP DATABASE IF EXISTS "+db) })
	conn, err := seed.Open(chAddr, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return db, conn
}
