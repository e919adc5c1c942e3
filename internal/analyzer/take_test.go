package analyzer

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// TestTakeBoundsBatchByEventsAndBytes: records of 10 events fill a batch
// up to batch_rows events or batch_bytes bytes, never past; the rest is
// returned in order for the next batch; a record larger than the bound
// alone makes a batch of its own.
func TestTakeBoundsBatchByEventsAndBytes(t *testing.T) {
	evs := testEvents("t", 100)
	var recs []*kgo.Record
	for i := 0; i < len(evs); i += 10 {
		v, err := event.Marshal(evs[i : i+10])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Value: v, Offset: int64(i / 10)})
	}
	size := len(recs[0].Value)
	for _, tc := range []struct {
		name          string
		rows, bytes   int
		wantRecs      int
		wantEventsMax int
	}{
		{"events", 25, 1 << 30, 2, 25},                  // a third record would make 30 events
		{"bytes", 1 << 20, 3*size + size/2, 3, 1 << 20}, // a fourth record would pass the bytes
		{"one big record", 5, 1 << 30, 1, 10},           // alone over the bound: a batch of its own
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(Options{Kafka: kafka.Config{Brokers: []string{"127.0.0.1:1"}}, Store: &store.Store{},
				Config: Config{BatchRows: tc.rows, BatchBytes: tc.bytes}})
			if err != nil {
				t.Fatal(err)
			}
			b := &batch{}
			var est recordSize
			rest := a.take(recs, b, &est)
			if len(b.records) != tc.wantRecs || len(rest) != len(recs)-tc.wantRecs || len(b.events) != 10*tc.wantRecs {
				t.Fatalf("took %d records (%d events), %d left", len(b.records), len(b.events), len(rest))
			}
			if len(b.events) > tc.wantEventsMax || (tc.wantRecs > 1 && b.bytes > tc.bytes) {
				t.Fatalf("batch of %d events, %d bytes over the bounds", len(b.events), b.bytes)
			}
			if rest[0].Offset != int64(tc.wantRecs) || b.events[len(b.events)-1].EventID != evs[10*tc.wantRecs-1].EventID {
				t.Fatalf("order: next offset %d, last event %s", rest[0].Offset, b.events[len(b.events)-1].EventID)
			}
			if n := est.fit(tc.rows, tc.bytes); n < 1 {
				t.Fatalf("poll size %d", n)
			}
		})
	}
}
