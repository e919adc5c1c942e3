package collector

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// groupByKey: one group per partition key in first-occurrence order, each
// with its events in request order, every event in exactly one group.
func TestGroupByKey(t *testing.T) {
	var evs []event.Event
	agents := []string{"a", "b", "a", "a", "", "b", "c", "", "a"}
	for i, a := range agents {
		e := event.Event{Tenant: "t", AgentID: a, TraceID: fmt.Sprintf("tr%d", i%2), EventID: fmt.Sprint(i)}
		evs = append(evs, e)
	}
	g := groupByKey(evs)
	want := map[string][]int{"t/agent:a": {0, 2, 3, 8}, "t/agent:b": {1, 5}, "t/trace:tr0": {4}, "t/agent:c": {6}, "t/trace:tr1": {7}}
	order := []string{"t/agent:a", "t/agent:b", "t/trace:tr0", "t/agent:c", "t/trace:tr1"}
	if len(g.heads) != len(order) {
		t.Fatalf("%d groups, want %d", len(g.heads), len(order))
	}
	seen := 0
	for gi := range g.heads {
		k := string(g.key(gi))
		if k != order[gi] {
			t.Errorf("group %d has key %q, want %q", gi, k, order[gi])
		}
		var got []int
		for i := g.heads[gi]; i >= 0; i = g.next[i] {
			got = append(got, int(i))
			if pk := evs[i].PartitionKey(); pk != k {
				t.Errorf("event %d (key %q) in group %q", i, pk, k)
			}
		}
		seen += len(got)
		if fmt.Sprint(got) != fmt.Sprint(want[k]) {
			t.Errorf("group %q: events %v, want %v", k, got, want[k])
		}
	}
	if seen != len(evs) {
		t.Errorf("%d events grouped, want %d", seen, len(evs))
	}
}

// One request of 300 events from 5 agents reaches Kafka as a few records
// per agent (each at most RecordGroupBytes, each event once, one agent's
// events in request order); with RecordGroupBytes 1, one record per event.
func TestRecordsGroupAgentEvents(t *testing.T) {
	const spans = 300
	body := protoBody(t, mcpTraces(spans, 200))
	for _, tc := range []struct {
		groupBytes int
		maxRecords int
	}{{16 << 10, 5 * 8}, {1, spans}} {
		t.Run(fmt.Sprint(tc.groupBytes), func(t *testing.T) {
			k := testbed.Kfake(t)
			c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.Kafka.Producer.RecordGroupBytes = tc.groupBytes })
			waitReady(t, c)
			if r := post(t, c, "/v1/traces", "application/x-protobuf", body, authHeader()); r.code != 200 {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			recs := readTopic(t, k.Brokers, testTopic)
			evs := decodeAll(t, recs) // every event's key is its record's key
			if len(evs) != spans {
				t.Fatalf("%d events in Kafka, want %d", len(evs), spans)
			}
			if len(recs) > tc.maxRecords || tc.groupBytes == 1 && len(recs) != spans {
				t.Errorf("%d records for %d events, want at most %d", len(recs), spans, tc.maxRecords)
			}
			last := map[string]int{}
			ids := map[string]bool{}
			for _, r := range recs {
				if n, _ := event.Unmarshal(r.Value); len(n) > 1 && len(r.Key)+len(r.Value) > tc.groupBytes {
					t.Errorf("record of %d events is %d bytes, over %d", len(n), len(r.Key)+len(r.Value), tc.groupBytes)
				}
			}
			for _, e := range evs {
				id, _ := strconv.Atoi(e.RequestID)
				if prev, ok := last[e.AgentID]; ok && id <= prev {
					t.Errorf("agent %s: request %d after %d (out of order)", e.AgentID, id, prev)
				}
				last[e.AgentID] = id
				ids[e.EventID] = true
			}
			if len(last) != 5 || len(ids) != spans {
				t.Errorf("%d agents and %d distinct events, want 5 and %d", len(last), len(ids), spans)
			}
		})
	}
}
