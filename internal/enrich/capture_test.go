package enrich

import (
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// perTrace splits an OTLP request into one request per trace: what the
// collector gets when each MCP request of a connection is exported on its
// own (OpenLLMetry Python starts a trace per request).
func perTrace(td ptrace.Traces) []ptrace.Traces {
	var out []ptrace.Traces
	idx := map[string]ptrace.Traces{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				id := sp.TraceID().String()
				one, ok := idx[id]
				if !ok {
					one = ptrace.NewTraces()
					idx[id] = one
					out = append(out, one)
					nrs := one.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(nrs.Resource())
					ss.Scope().CopyTo(nrs.ScopeSpans().AppendEmpty().Scope())
				}
				sp.CopyTo(one.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty())
			}
		}
	}
	return out
}

// TestOpenLLMetryPythonCapture replays the real OpenLLMetry Python capture
// (internal/event/testdata) with each request mapped on its own, as a
// collector sees them when they arrive in separate OTLP requests: only
// initialize names the server, and every request is its own trace, so
// before enrichment every call has its own session key and no server.
func TestOpenLLMetryPythonCapture(t *testing.T) {
	b, err := os.ReadFile("../event/testdata/traceloop-python-0.62.4/client.pb")
	if err != nil {
		t.Fatal(err)
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
	if err != nil {
		t.Fatal(err)
	}
	x := newMem(t, Config{})
	var all []event.Event
	sessionsBefore := map[string]bool{}
	received := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, one := range perTrace(td) {
		evs := event.FromTraces(one, event.MapOptions{ReceivedAt: received}).Events
		for i := range evs {
			e := &evs[i]
			if e.AgentID == "" {
				// What the collector's agent identity gives (service.name +
				// service.instance.id) once it fills agent_id.
				e.AgentID = e.ServiceName + "/" + e.ServiceInstance
			}
			sessionsBefore[e.SessionKey] = true
		}
		all = append(all, enrich(t, x, evs...)...) // one batch per request
	}
	var calls, init int
	sessions := map[string]bool{}
	for _, e := range all {
		sessions[e.SessionKey] = true
		switch e.Method {
		case "initialize":
			init++
			if e.ServerName != "demo-server" || e.HasTag(TagServer) {
				t.Errorf("initialize: %q %q", e.ServerName, e.Tags)
			}
		case "tools/call":
			calls++
			if e.ServerName != "demo-server" || e.ServerVersion != "1.30.0" || !e.HasTag(TagServer) {
				t.Errorf("%s: server %q %q tags %q", e.ToolName, e.ServerName, e.ServerVersion, e.Tags)
			}
		}
		if !e.HasTag(TagSession) {
			t.Errorf("%s %s: no derived session", e.Method, e.ToolName)
		}
	}
	t.Logf("%d events, %d calls, %d session keys before enrichment", len(all), calls, len(sessionsBefore))
	if init != 1 || calls < 4 {
		t.Fatalf("capture: %d initialize, %d calls", init, calls)
	}
	if len(sessionsBefore) < 8 || len(sessions) != 1 {
		t.Fatalf("session keys: %d before enrichment, %d after (want 1)", len(sessionsBefore), len(sessions))
	}
}
