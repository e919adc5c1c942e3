package testbed

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestClickHouseQueryAndIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := ClickHouse(t)
	b := ClickHouse(t)
	if a.Database == b.Database {
		t.Fatalf("two calls returned the same database %q", a.Database)
	}
	if a.Addr != b.Addr {
		t.Fatalf("expected one shared server, got %s and %s", a.Addr, b.Addr)
	}
	conn := a.Conn(t)
	// LowCardinality needs the profile setting the testbed's users.xml sets.
	if err := conn.Exec(ctx, "CREATE TABLE t (k LowCardinality(String), v UInt64) ENGINE = MergeTree ORDER BY k"); err != nil {
		t.Fatalf("create: %v", err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO t (k, v)")
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	for i := range 100 {
		if err := batch.Append([]string{"x", "y"}[i%2], uint64(i)); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}
	var n, sum uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(v) FROM t WHERE k = ?", "y").Scan(&n, &sum); err != nil {
		t.Fatalf("query: %v", err)
	}
	if n != 50 || sum != 2500 { // 1+3+...+99
		t.Fatalf("got count=%d sum=%d, want 50 and 2500", n, sum)
	}
	// The other database does not see the table.
	var tables uint64
	if err := b.Conn(t).QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 't'", b.Database).Scan(&tables); err != nil {
		t.Fatalf("query b: %v", err)
	}
	if tables != 0 {
		t.Fatalf("database %s sees %d tables named t", b.Database, tables)
	}
}

func TestStartClickHouseStops(t *testing.T) {
	if os.Getenv("MCPWATCH_TEST_CLICKHOUSE") != "" {
		t.Log("MCPWATCH_TEST_CLICKHOUSE set; still starting an own server to test start/stop")
	}
	ctx := context.Background()
	s, stop, err := StartClickHouse(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.CreateDatabase(ctx, "demo")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	conn, err := ch.Open(ctx)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		t.Fatalf("version: %v", err)
	}
	t.Logf("clickhouse %s at %s", v, s.Addr)
	conn.Close()
	stop()
	if !s.p.exited() {
		t.Fatal("server still running after stop")
	}
	if err := pingClickHouse(ctx, s.Addr); err == nil {
		t.Fatal("server still answers after stop")
	}

	// Restart on the same port and data: the database is still there.
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	defer stop()
	conn, err = ch.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = 'demo'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("database demo after restart: count %d, err %v", n, err)
	}
}
