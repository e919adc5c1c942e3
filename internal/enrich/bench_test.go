package enrich

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// benchBatch is a decoded batch as the analyzer holds it: n events of
// `agents` agents in records of 10 events, the strings shared between
// events (the decoder interns them). A third of the agents are gateways
// (server name, version and MCP session id on every event: they teach, no
// derived session), a third OpenLLMetry Python clients (nothing but the
// agent: server from the agent level, derived session), a third MCP SDK
// clients over stdio (transport only: server from the transport level,
// derived session). Events of one agent are 100 ms apart.
func benchBatch(n, agents int) []event.Event {
	names := make([]string, agents)
	for i := range names {
		names[i] = fmt.Sprintf("agent-%03d", i)
	}
	sids := make([]string, agents)
	for i := range sids {
		sids[i] = fmt.Sprintf("5f0c4e1e-%04d-4a7e-9d7c-0b1b2c3d4e5f", i)
	}
	tools := []string{"read_file", "write_file", "search", "fetch", "list_dir"}
	evs := make([]event.Event, 0, n)
	seq := make([]int, agents)
	for len(evs) < n {
		for a := 0; a < agents && len(evs) < n; a++ {
			for r := 0; r < 10 && len(evs) < n; r++ {
				i := seq[a]
				seq[a]++
				e := event.Event{
					EventID: fmt.Sprintf("%032x-%016x", a, i), Tenant: "acme", Kind: event.KindMessage,
					Time: t0.Add(time.Duration(i) * 100 * time.Millisecond), Source: event.SourceSpan, Observer: event.ObserverClient,
					TraceID: fmt.Sprintf("%032x", a<<32|i), SpanID: fmt.Sprintf("%016x", i),
					Method: "tools/call", AgentID: names[a], ToolName: tools[i%len(tools)],
					Arguments: `{"path":"/srv/data/report.csv"}`, Outcome: event.OutcomeOK,
				}
				e.SessionKey = e.TraceID
				switch a % 3 {
				case 0:
					e.ServerName, e.ServerVersion, e.SessionID, e.ClientName = "filesystem", "2.1.0", sids[a], "gateway"
					e.SessionKey = e.SessionID
				case 1:
					if i == 0 {
						e.Method, e.ServerName, e.ServerVersion = "initialize", "demo-server", "1.30.0"
					}
				case 2:
					e.ClientName, e.Transport = "mcp", "pipe"
					if i == 0 {
						e.Method, e.ServerName, e.ServerVersion = "initialize", "git", "0.6.2"
					}
				}
				evs = append(evs, e)
			}
		}
	}
	return evs
}

// BenchmarkEnrich is the per-event cost on cached agents: the batch's
// agents are in memory (the steady state), every iteration is the next
// stretch of the same stream (times shifted), Flush not included.
func BenchmarkEnrich(b *testing.B) { benchEnrich(b, false) }

// BenchmarkEnrichCallIDs is BenchmarkEnrich with a derived call_id on every
// event (a client span's: trace + span + method + request id), each call
// seen once: the worst case of the call memory (calls.go), one remembered
// call per event and, past maxCalls, one forgotten.
func BenchmarkEnrichCallIDs(b *testing.B) { benchEnrich(b, true) }

func benchEnrich(b *testing.B, callIDs bool) {
	const n, agents = 5000, 100
	pristine := benchBatch(n, agents)
	span := pristine[len(pristine)-1].Time.Sub(pristine[0].Time) + 100*time.Millisecond
	x, err := New(Config{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	work := make([]event.Event, n)
	ctx := context.Background()
	copy(work, pristine)
	if err := x.Enrich(ctx, work); err != nil { // load (create) the agents
		b.Fatal(err)
	}
	// Call ids made up front (not in the timed loop, nor its garbage): 16
	// batches' worth, more than maxCalls, so a set comes round again only
	// after the memory forgot it and every lookup stays a miss.
	var ids [][]string
	if callIDs {
		ids = make([][]string, 16)
		for r := range ids {
			ids[r] = make([]string, n)
			for j := range ids[r] {
				ids[r][j] = fmt.Sprintf("%s%s:tools/call:%d", pristine[j].TraceID, pristine[j].SpanID, r)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		copy(work, pristine)
		shift := time.Duration(i+1) * span
		for j := range work {
			work[j].Time = work[j].Time.Add(shift)
			if callIDs {
				work[j].CallID = ids[i%len(ids)][j]
			}
		}
		if i%64 == 63 {
			_ = x.Flush(ctx) // memory only: clears the change lists as the analyzer's flushes would
		}
		b.StartTimer()
		if err := x.Enrich(ctx, work); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	if st := x.Stats(); st.FilledServer == 0 || st.FilledSession == 0 || st.Ambiguous != 0 || st.CallCounted != 0 {
		b.Fatalf("the batch did not exercise the fills: %+v", st)
	}
	if callIDs && (x.calls.len() < min(maxCalls/2, b.N*n) || x.calls.len() > maxCalls) {
		b.Fatalf("%d calls remembered", x.calls.len())
	}
	if callIDs && 16*n <= maxCalls {
		b.Fatal("the call id sets fit in the memory: lookups would hit")
	}
}

// BenchmarkEnrichFlush adds the Flush of every batch against the real
// ClickHouse (the analyzer flushes before each commit).
func BenchmarkEnrichFlush(b *testing.B) {
	const n, agents = 5000, 100
	ctx := context.Background()
	ch := testbed.ClickHouse(b)
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	pristine := benchBatch(n, agents)
	span := pristine[len(pristine)-1].Time.Sub(pristine[0].Time) + 100*time.Millisecond
	x, err := New(Config{}, Options{Conn: st.Conn(), Database: ch.Database})
	if err != nil {
		b.Fatal(err)
	}
	work := make([]event.Event, n)
	copy(work, pristine)
	if err := x.Enrich(ctx, work); err != nil {
		b.Fatal(err)
	}
	if err := x.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		copy(work, pristine)
		shift := time.Duration(i+1) * span
		for j := range work {
			work[j].Time = work[j].Time.Add(shift)
		}
		b.StartTimer()
		if err := x.Enrich(ctx, work); err != nil {
			b.Fatal(err)
		}
		if err := x.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
