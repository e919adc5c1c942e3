package analyzer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// BenchmarkAppendColumns measures the client side of one 50k-row events
// insert (column fill + clickhouse-go appends, then Abort: nothing is sent)
// for the same rows held three ways: the benchmark fixture, events decoded
// by event.UnmarshalAppend (strings are slices of one copy per Kafka
// value), and events decoded by the analyzer's event.Decoder (interned).
//
//	go test -p 1 -run '^$' -bench BenchmarkAppendColumns -count 3 ./internal/analyzer/
func BenchmarkAppendColumns(b *testing.B) {
	const n = DefaultBatchRows
	fixture := testEvents("b", n)
	var plain, interned []event.Event
	var dec event.Decoder
	for i := range fixture {
		v, err := event.Marshal(fixture[i : i+1])
		if err != nil {
			b.Fatal(err)
		}
		if plain, err = event.UnmarshalAppend(plain, v); err != nil {
			b.Fatal(err)
		}
		if interned, err = dec.UnmarshalAppend(interned, v); err != nil {
			b.Fatal(err)
		}
	}
	ch := testbed.ClickHouse(b)
	conn := openStore(b, ch.Addr, ch.Database).Conn()
	sql := "INSERT INTO " + ch.Database + ".events (" + strings.Join(store.EventColumns(), ", ") + ")"
	for _, c := range []struct {
		name string
		evs  []event.Event
	}{{"fixture", fixture}, {"UnmarshalAppend", plain}, {"Decoder", interned}} {
		b.Run(c.name, func(b *testing.B) {
			var bufs store.EventColumnBuffers
			for i := 0; i < b.N; i++ {
				batch, err := conn.PrepareBatch(context.Background(), sql)
				if err != nil {
					b.Fatal(err)
				}
				for ci, col := range bufs.Fill(c.evs, time.Now()) {
					if err := batch.Column(ci).Append(col); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Abort(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}
