package analyzer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestRetentionSealedCallTables: the tables internal/rollup derives from
// calls_per_minute lose their days past calls_per_minute's retention with
// it, and keep the recent ones.
func TestRetentionSealedCallTables(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	ctx := context.Background()
	now := time.Now().UTC()
	oldMin, newMin := now.AddDate(0, 0, -40).Truncate(time.Minute), now.Truncate(time.Minute)
	// Events fill calls_per_minute and (by calls_dirty_mv) calls_seal_state.
	evs := testEvents("r", 4)
	evs[0].Time, evs[1].Time, evs[2].Time, evs[3].Time = oldMin, oldMin, newMin, newMin
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ table, col string }{
		{"calls_sealed", "minute"}, {"calls_sealed_hourly", "hour"}, {"calls_sealed_totals", "minute"},
	} {
		b, err := st.Conn().PrepareBatch(ctx, "INSERT INTO "+ch.Database+"."+tc.table+" ("+tc.col+", tenant, calls, version)")
		if err != nil {
			t.Fatalf("%s: %v", tc.table, err)
		}
		for _, m := range []time.Time{oldMin, newMin} {
			if err := b.Append(m, "acme", uint64(1), uint64(1)); err != nil {
				t.Fatalf("%s: %v", tc.table, err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatalf("%s: %v", tc.table, err)
		}
	}
	count := func(table, col string, before bool) uint64 {
		t.Helper()
		op := ">="
		if before {
			op = "<"
		}
		var n uint64
		q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s %s ?", ch.Database, table, col, op)
		if err := st.Conn().QueryRow(ctx, q, now.AddDate(0, 0, -30)).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	tables := map[string]string{"calls_per_minute": "minute", "calls_seal_state": "minute",
		"calls_sealed": "minute", "calls_sealed_hourly": "hour", "calls_sealed_totals": "minute"}
	for table, col := range tables {
		if count(table, col, true) == 0 || count(table, col, false) == 0 {
			t.Fatalf("%s: fixture lacks an old or a recent row", table)
		}
	}
	a, err := New(Options{Kafka: kafka.Config{Brokers: k.Brokers}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	a.ApplyRetention(ctx, now) // default calls_per_minute_days: 30
	for table, col := range tables {
		if n := count(table, col, true); n != 0 {
			t.Errorf("%s: %d rows older than 30 days left", table, n)
		}
		if n := count(table, col, false); n == 0 {
			t.Errorf("%s: recent rows dropped", table)
		}
	}
	if len(store.SealedCallTables()) != len(tables)-1 {
		t.Errorf("sealed tables %v: teach this test the new one", store.SealedCallTables())
	}
}

// TestRetentionEventIndexTables: the per-event indexes of events
// (redaction_sightings, blast_index) lose their days past the events'
// retention with them, and keep the recent ones.
func TestRetentionEventIndexTables(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	ctx := context.Background()
	now := time.Now().UTC()
	evs := testEvents("ix", 4)
	for i := range evs {
		evs[i].Time = now
		if i < 2 {
			evs[i].Time = now.AddDate(0, 0, -40)
		}
		evs[i].Arguments = `{"token":"[REDACTED:github_token:0a1b2c3d]"}`
	}
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	count := func(table string, before bool) uint64 {
		t.Helper()
		op := ">="
		if before {
			op = "<"
		}
		var n uint64
		q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE ts %s ?", ch.Database, table, op)
		if err := st.Conn().QueryRow(ctx, q, now.AddDate(0, 0, -30)).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for _, table := range store.EventIndexTables() {
		if count(table, true) == 0 || count(table, false) == 0 {
			t.Fatalf("%s: fixture lacks an old or a recent row", table)
		}
	}
	a, err := New(Options{Kafka: kafka.Config{Brokers: k.Brokers}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	a.ApplyRetention(ctx, now) // default events_days: 30
	for _, table := range store.EventIndexTables() {
		if n := count(table, true); n != 0 {
			t.Errorf("%s: %d rows older than 30 days left", table, n)
		}
		if n := count(table, false); n == 0 {
			t.Errorf("%s: recent rows dropped", table)
		}
	}
}
