package store

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens a Store on a fresh database of the shared test server.
func openStore(t *testing.T) *Store {
	t.Helper()
	ch := testbed.ClickHouse(t)
	s, err := Open(ctxT(t), Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// migratedStore is openStore plus Migrate.
func migratedStore(t *testing.T) *Store {
	t.Helper()
	s := openStore(t)
	if _, err := s.Migrate(ctxT(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func count(t *testing.T, s *Store, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := s.conn.QueryRow(ctxT(t), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Addr: []string{"nohostport"}, Database: "x; DROP", Password: "a", PasswordFile: "b",
		TLS: TLSConfig{CertFile: "c", InsecureSkipVerify: true}}
	err := bad.WithDefaults().Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"clickhouse.addr", "clickhouse.database", "only one of password", "cert_file and key_file", "tls.enabled is false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestConfigPasswordSources(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/pw"
	os.WriteFile(f, []byte("s3cret\n"), 0o600)
	if pw, err := (Config{PasswordFile: f}).password(); err != nil || pw != "s3cret" {
		t.Fatalf("file: %q %v", pw, err)
	}
	t.Setenv("MCPWATCH_TEST_CH_PW", "envpw")
	if pw, err := (Config{PasswordEnv: "MCPWATCH_TEST_CH_PW"}).password(); err != nil || pw != "envpw" {
		t.Fatalf("env: %q %v", pw, err)
	}
	if _, err := (Config{PasswordEnv: "MCPWATCH_TEST_CH_PW_UNSET"}).password(); err == nil {
		t.Fatal("unset env accepted")
	}
}

func TestMigrationsOrderedAndSplit(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 8 {
		t.Fatalf("only %d migrations", len(ms))
	}
	for i, m := range ms {
		if i > 0 && ms[i-1].Version >= m.Version {
			t.Errorf("%s after %s", m.Name, ms[i-1].Name)
		}
		stmts := m.Statements("db1")
		if len(stmts) == 0 {
			t.Errorf("%s has no statement", m.Name)
		}
		for _, s := range stmts {
			if strings.Contains(s, "{db}") || strings.HasSuffix(s, ";") {
				t.Errorf("%s: bad statement %q", m.Name, s)
			}
		}
	}
	if ms[0].Name != "0001_schema_migrations.sql" {
		t.Errorf("first migration %s", ms[0].Name)
	}
	// Numeric, not lexical, order and multi-statement files.
	fsys := fstest.MapFS{
		"10_b.sql": {Data: []byte("CREATE TABLE {db}.b (x UInt8) ENGINE = Memory")},
		"9_a.sql":  {Data: []byte("-- two statements\nCREATE TABLE {db}.a (x UInt8) ENGINE = Memory;\nCREATE TABLE {db}.a2 (x UInt8) ENGINE = Memory;\n")},
	}
	ms, err = loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Name != "9_a.sql" || ms[1].Name != "10_b.sql" {
		t.Fatalf("order %s, %s", ms[0].Name, ms[1].Name)
	}
	if got := ms[0].Statements("d"); len(got) != 2 || !strings.Contains(got[1], "`d`.a2") {
		t.Fatalf("split: %q", got)
	}
	if _, err := loadMigrations(fstest.MapFS{"x.sql": {Data: []byte("SELECT 1")}}); err == nil {
		t.Fatal("unnumbered migration accepted")
	}
}

func TestMigrateIdempotent(t *testing.T) {
	s := openStore(t)
	ms, _ := Migrations()
	res, err := s.Migrate(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(ms) || len(res.Skipped) != 0 {
		t.Fatalf("first run: %+v", res)
	}
	res, err = s.Migrate(ctxT(t))
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(res.Applied) != 0 || len(res.Skipped) != len(ms) {
		t.Fatalf("second run: %+v", res)
	}
	names, err := s.AppliedMigrations(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if names[i] != m.Name {
			t.Fatalf("recorded %v", names)
		}
	}
	if n := count(t, s, "SELECT count() FROM "+s.table("schema_migrations")+" FINAL"); n != uint64(len(ms)) {
		t.Fatalf("%d migration rows", n)
	}
}

// TestAddColumnMigrationRerun: an ADD COLUMN migration (no IF NOT EXISTS
// on 18.16) applied again after its column exists, as after a crash
// between the ALTER and the record, is skipped, not an error.
func TestAddColumnMigrationRerun(t *testing.T) {
	s := openStore(t)
	if _, err := s.Migrate(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	all, _ := Migrations()
	var addCol Migration
	for _, m := range all {
		if strings.Contains(m.Name, "_events_call_id") {
			addCol = m
		}
	}
	stmts := addCol.Statements(s.db)
	if len(stmts) != 1 {
		t.Fatalf("statements %q", stmts)
	}
	done, err := s.columnAdded(ctxT(t), stmts[0])
	if err != nil || !done {
		t.Fatalf("columnAdded = %v, %v; want true", done, err)
	}
	if err := s.conn.Exec(ctxT(t), "ALTER TABLE "+s.table("schema_migrations")+" DELETE WHERE version = ?", addCol.Version); err != nil {
		t.Logf("cannot forget the record (%v): the runner's check alone is tested", err)
	} else if _, err := s.migrate(ctxT(t), all); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	other := strings.Replace(stmts[0], "COLUMN call_id", "COLUMN not_there_yet", 1)
	if done, err := s.columnAdded(ctxT(t), other); err != nil || done {
		t.Fatalf("columnAdded(new column) = %v, %v; want false", done, err)
	}
}

// TestEachMigrationApplies applies the migrations one prefix at a time, so
// each file is shown to apply on top of its predecessors, and checks the
// objects it creates exist.
func TestEachMigrationApplies(t *testing.T) {
	all, _ := Migrations()
	s := openStore(t)
	for i, m := range all {
		t.Run(m.Name, func(t *testing.T) {
			res, err := s.migrate(ctxT(t), all[:i+1])
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Applied) != 1 || res.Applied[0] != m.Name {
				t.Fatalf("applied %v", res.Applied)
			}
			// The object named in the CREATE statement now exists.
			stmt := m.Statements(s.db)[0]
			name := stmt[strings.Index(stmt, "`"+s.db+"`.")+len(s.db)+3:]
			name = strings.Fields(name)[0]
			if n := count(t, s, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.db, name); n != 1 {
				t.Fatalf("%s: table %q missing", m.Name, name)
			}
		})
	}
}

func TestMigrateChecksumChange(t *testing.T) {
	s := openStore(t)
	m1 := []Migration{{Version: 1, Name: "0001_x.sql", Checksum: "aaa", SQL: "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"}}
	if _, err := s.migrate(ctxT(t), m1); err != nil {
		t.Fatal(err)
	}
	m1[0].Checksum = "bbb"
	_, err := s.migrate(ctxT(t), m1)
	if err == nil || !strings.Contains(err.Error(), "0001_x.sql was applied with checksum aaa") {
		t.Fatalf("changed checksum: %v", err)
	}
}

func TestMigrateFailsClearly(t *testing.T) {
	s := openStore(t)
	all, _ := Migrations()
	bad := append(all[:1:1], Migration{Version: 2, Name: "0002_bad.sql", Checksum: "x", SQL: "CREATE TABLE {db}.t (x Nope) ENGINE = Memory"})
	_, err := s.migrate(ctxT(t), bad)
	if err == nil || !strings.Contains(err.Error(), "cannot apply migration 0002_bad.sql") {
		t.Fatalf("got %v", err)
	}
	// Not recorded: a fixed file applies next time.
	names, _ := s.AppliedMigrations(ctxT(t))
	if len(names) != 1 {
		t.Fatalf("recorded %v", names)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	port, _ := testbed.FreePort()
	_, err := Open(ctx, Config{Addr: []string{"127.0.0.1:" + strconv.Itoa(port)}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "cannot reach clickhouse") {
		t.Fatalf("got %v", err)
	}
}

var _ = event.KindMessage
