package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestIsPermanent: a write that does not fit the table (a dropped column,
// a missing table) is permanent; a deadline or a refused connection is
// transient.
func TestIsPermanent(t *testing.T) {
	s := migratedStore(t)
	ctx := ctxT(t)
	evs := []event.Event{{EventID: "e1", Tenant: "acme", Time: time.Now()}}
	if err := s.InsertEvents(ctx, evs); err != nil || IsPermanent(err) {
		t.Fatalf("insert into a fitting table: %v", err)
	}
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.table("events")+" DROP COLUMN user_agent"); err != nil {
		t.Fatal(err)
	}
	err := s.InsertEvents(ctx, evs)
	if err == nil || !IsPermanent(err) {
		t.Fatalf("insert naming a dropped column: %v, permanent %v", err, IsPermanent(err))
	}
	if err := s.conn.Exec(ctx, "INSERT INTO `"+s.db+"`.no_such_table (x) VALUES (1)"); err == nil || !IsPermanent(err) {
		t.Fatalf("insert into a missing table: %v", err)
	}
	for _, err := range []error{
		fmt.Errorf("cannot insert into events: %w", context.DeadlineExceeded),
		errors.New("dial tcp 127.0.0.1:1: connect: connection refused"),
	} {
		if IsPermanent(err) {
			t.Errorf("%v is permanent", err)
		}
	}
}

// TestSecurityFrozenClickHouseFailsWrites: against a SIGSTOPped server
// (connections accepted, nothing answered) a ping, an events insert, a
// prepared insert and a findings insert each fail at their deadline, as a
// transient error, instead of blocking for read_timeout (5 minutes). A
// write that needs a new connection waits at most dial_timeout for the
// handshake.
func TestSecurityFrozenClickHouseFailsWrites(t *testing.T) {
	ch, srv := testbed.OwnClickHouse(t)
	ctx := ctxT(t)
	s, err := Open(ctx, Config{Addr: []string{ch.Addr}, Database: ch.Database, DialTimeout: time.Second, InsertTimeout: time.Second, PingTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{{EventID: "e1", Tenant: "acme", Time: time.Now()}}
	p, err := s.PrepareEvents(ctx, evs) // prepared before the freeze, sent during it
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Signal(syscall.SIGCONT) }) //nolint:errcheck
	for name, write := range map[string]func() error{
		"ping":     func() error { return s.Ping(ctx) },
		"events":   func() error { return s.InsertEvents(ctx, evs) },
		"prepared": p.Send,
		"findings": func() error {
			return s.InsertFindings(ctx, []event.Finding{{FindingID: "f", Tenant: "acme", RuleID: "r", Severity: event.SeverityLow}})
		},
		"tool_definitions": func() error {
			_, err := s.UpsertToolDefinitions(ctx, []event.Event{{EventID: "d", Tenant: "acme", Kind: event.KindToolDefinition, ToolName: "t", ToolDefinitionHash: "h"}})
			return err
		},
	} {
		if err := write(); err == nil || IsPermanent(err) {
			t.Errorf("%s on a frozen server: %v (permanent %v), want a transient error", name, err, IsPermanent(err))
		}
		if ctx.Err() != nil {
			t.Fatalf("%s outlived the test's context", name)
		}
	}
	if err := srv.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertEvents(ctx, evs); err != nil {
		t.Fatalf("insert after SIGCONT: %v", err)
	}
}
