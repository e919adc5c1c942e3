// Package incidenttest gives tests of the incident, notify, playbook and api
// packages a migrated ClickHouse database (a real server from testbed).
package incidenttest

import (
	"context"
	"io/fs"
	"sort"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
	"github.com/mcpwatch/mcpwatch/schema"
)

// Store returns a CHStore on a fresh database with every schema/ migration
// applied, and the connection under it.
func Store(t testing.TB) (*incident.CHStore, driver.Conn) {
	t.Helper()
	ch := testbed.ClickHouse(t)
	conn := ch.Conn(t)
	Migrate(t, conn, ch.Database)
	s, err := incident.NewCHStore(conn, ch.Database)
	if err != nil {
		t.Fatal(err)
	}
	return s, conn
}

// Migrate applies the schema/ files to db.
func Migrate(t testing.TB, conn driver.Conn, db string) {
	t.Helper()
	names, err := fs.Glob(schema.Files, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(schema.Files, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range strings.Split(stripComments(strings.ReplaceAll(string(b), "{db}", db)), ";") {
			if onlyComments(stmt) {
				continue
			}
			if err := conn.Exec(context.Background(), stmt); err != nil {
				t.Fatalf("cannot apply %s: %v", n, err)
			}
		}
	}
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "--") {
			return false
		}
	}
	return true
}

// stripComments drops "--" comment lines: ClickHouse 18.16 rejects a
// statement that starts with a comment.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--") {
			continue
		}
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}
