package analyzer

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/calljoin"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// BenchmarkDivert is the ingest role's cost of the call join per batch of
// 10 000 events: "complete" is traffic the join does not touch (every
// event whole: the common case, and the one every deployment pays);
// "halves" is bare-SDK traffic, every event a client or server half
// (encoded to the calls topic).
func BenchmarkDivert(b *testing.B) {
	const n = 10000
	complete := testEvents("d", n)
	halves := make([]event.Event, 0, n)
	for i := 0; len(halves) < n; i++ {
		c, s := joinHalves(i)
		halves = append(halves, c, s)
	}
	for _, tc := range []struct {
		name string
		evs  []event.Event
	}{{"complete", complete}, {"halves", halves}} {
		b.Run(tc.name, func(b *testing.B) {
			a := &Analyzer{cfg: Config{}.WithDefaults(), joinOn: true, pairs: &calljoin.Pairs{},
				m: newMetrics(prometheus.NewRegistry()), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				o: Options{Kafka: kafka.Config{CallsTopic: "calls"}}}
			bt := &batch{events: make([]event.Event, n), spans: make([]int, n)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bt.events = bt.events[:n]
				copy(bt.events, tc.evs)
				for j := range bt.spans {
					bt.spans[j] = 1
				}
				bt.diverted, bt.calls = false, bt.calls[:0]
				b.StartTimer()
				a.divert(bt)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// BenchmarkCallJoinLatency: how long after the second half of a call
// reaches the events topic both are stored, with the default
// batch_interval (250ms): the half goes through an ingest batch, the
// calls topic, the join and a second ingest batch. Real Kafka (kfake) and
// ClickHouse; one call at a time.
func BenchmarkCallJoinLatency(b *testing.B) {
	ch := testbed.ClickHouse(b)
	k := testbed.Kfake(b)
	st := openStore(b, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "lat", DeadLetterTopic: "lat.dlq"}
	ensureTopics(b, kc)
	a, _ := running(b, Options{Kafka: kc, Store: st})
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		c, s := joinHalves(i)
		produceTo(b, k.Brokers, "lat", 1, []event.Event{s})
		for value(a.m.joinHeld) != 1 {
			time.Sleep(time.Millisecond)
		}
		t0 := time.Now()
		produceTo(b, k.Brokers, "lat", 0, []event.Event{c})
		for distinct(b, st) != uint64(2*(i+1)) {
			time.Sleep(5 * time.Millisecond)
		}
		if i > 0 { // the first call's client half is stored at once (agent-A never paired yet)
			lat = append(lat, time.Since(t0))
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "median-ms/call")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms/call")
	}
}
