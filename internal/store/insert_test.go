package store

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// filled returns an event with every field set (seeded), so a column that
// Fill forgets to overwrite shows up as a stale value.
func filled(t *testing.T, seed int) event.Event {
	t.Helper()
	var e event.Event
	v := reflect.ValueOf(&e).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, n := v.Field(i), seed*100+i+1
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(time.Unix(1_800_000_000+int64(n), int64(n)).UTC()))
		case f.Kind() == reflect.String:
			f.SetString(fmt.Sprintf("%s-%d", v.Type().Field(i).Name, n))
		case f.Kind() == reflect.Uint64, f.Kind() == reflect.Uint32, f.Kind() == reflect.Uint16:
			f.SetUint(uint64(n))
		case f.Kind() == reflect.Int32:
			f.SetInt(int64(-n))
		case f.Kind() == reflect.Slice:
			f.Set(reflect.ValueOf([]string{fmt.Sprint(n)}))
		default:
			t.Fatalf("filled does not know %s", v.Type().Field(i).Name)
		}
	}
	return e
}

// TestEventColumnBuffersReuse: a Fill after a larger batch of fully set
// events returns exactly what fresh slices hold (no stale value survives
// in any column), for a zero event (defaults) and a full one.
func TestEventColumnBuffersReuse(t *testing.T) {
	now := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	var c EventColumnBuffers
	big := []event.Event{filled(t, 1), filled(t, 2), filled(t, 3)}
	if got, want := c.Fill(big, now), EventColumnsData(big, now); !reflect.DeepEqual(got, want) {
		t.Fatalf("first Fill differs:\n got  %v\n want %v", got, want)
	}
	small := []event.Event{{}, filled(t, 4)}
	got, want := c.Fill(small, now), EventColumnsData(small, now)
	if len(got) != len(eventColumns) {
		t.Fatalf("%d columns, want %d", len(got), len(eventColumns))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("column %s after reuse = %v, want %v", eventColumns[i], got[i], want[i])
		}
	}
}

// TestPrepareEvents: a prepared insert stores its rows only when sent; an
// aborted one stores nothing and gives its connection back (more aborts
// than the pool holds still prepare); two prepared inserts may be open at
// once, as the analyzer has them.
func TestPrepareEvents(t *testing.T) {
	s := migratedStore(t)
	ctx := ctxT(t)
	evs := seedEvents()
	for i := 0; i < DefaultMaxConns+2; i++ {
		p, err := s.PrepareEvents(ctx, evs[:3])
		if err != nil {
			t.Fatalf("prepare %d: %v", i, err)
		}
		p.Abort()
	}
	first, err := s.PrepareEvents(ctx, evs[3:5])
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.PrepareEvents(ctx, evs[5:])
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count() FROM "+s.table("events")); n != 0 {
		t.Fatalf("%d rows before any Send", n)
	}
	if err := first.Send(); err != nil {
		t.Fatal(err)
	}
	if err := second.Send(); err != nil {
		t.Fatal(err)
	}
	n, err := s.CountDistinctEvents(ctx, "acme")
	if err != nil || n != uint64(len(evs)-3) {
		t.Fatalf("distinct events %d %v, want %d (the aborted rows must not be stored)", n, err, len(evs)-3)
	}
	if n := count(t, s, "SELECT count() FROM "+s.table("events")+" WHERE event_id IN ('ev-000', 'ev-001', 'ev-002')"); n != 0 {
		t.Fatalf("%d aborted rows stored", n)
	}
}
