package calljoin

import (
	"os"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// mapCapture maps one process's OTLP export (internal/event/testdata) as
// the collector maps one request.
func mapCapture(t *testing.T, path string) []event.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	batch, _, ok := event.TracesFromProtoString(string(b), event.MapOptions{})
	if !ok || batch.Dropped != 0 {
		t.Fatalf("%s: not mapped (ok %v, dropped %d)", path, ok, batch.Dropped)
	}
	return batch.Events
}

// TestJoinRealCaptures: the MCP Python SDK 2.3.0 and fastmcp 4.2.3
// captures, client and server exported by two processes (mapped as two
// requests), through the ingest rule and the Joiner, server first or
// client first: every observation it releases names the client's agent
// and the server, and every call is counted by exactly one of them.
func TestJoinRealCaptures(t *testing.T) {
	for _, tc := range []struct {
		dir, agent, server string
		calls              int
	}{
		{"mcp-python-sdk-2.3.0", "py-mcp-demo-client/a01322ed-adcc-48a9-be29-2d566c92450f", "py-mcp-demo-server", 13},
		{"fastmcp-4.2.3", "py-fastmcp-demo-client/2b2741eb-3b9d-44e9-9e2f-b48c99e61e45", "demo-server", 13},
	} {
		for _, serverFirst := range []bool{false, true} {
			dir := "../event/testdata/" + tc.dir + "/"
			client, server := mapCapture(t, dir+"client.pb"), mapCapture(t, dir+"server.pb")
			first, second := client, server
			if serverFirst {
				first, second = server, client
			}
			var p Pairs
			// The agent paired before (its client halves wait, too).
			p.Observe(t0, &event.Event{Tenant: client[0].Tenant, AgentID: tc.agent, Tags: []string{TagJoined}})
			j := New(Config{})
			var rel []Release
			off := int64(0)
			for _, evs := range [][]event.Event{first, second} {
				for i := range evs {
					e := &evs[i]
					if p.Decide(t0, e) != Divert {
						continue
					}
					off++
					rel = append(rel, j.Add(t0, Obs{Event: *e, Offset: off})...)
				}
			}
			if j.Held() != 0 {
				t.Errorf("%s: %d observations still held", tc.dir, j.Held())
			}
			counted := map[string]int{}
			for _, r := range rel {
				e := r.Event
				if e.AgentID != tc.agent || e.ServerName != tc.server || r.Result != ResultPaired {
					t.Errorf("%s %s (%s): agent %q server %q result %s", tc.dir, e.EventID, e.Observer, e.AgentID, e.ServerName, r.Result)
				}
				if !e.HasTag(TagCallCounted) {
					counted[e.CallID]++
				}
			}
			if len(counted) != tc.calls || len(rel) != 2*tc.calls {
				t.Errorf("%s: %d observations released, %d calls counted; want %d, %d", tc.dir, len(rel), len(counted), 2*tc.calls, tc.calls)
			}
			for id, n := range counted {
				if n != 1 {
					t.Errorf("%s: call %s counted %d times", tc.dir, id, n)
				}
			}
		}
	}
}
