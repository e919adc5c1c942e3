package enrich

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// ev builds a tools/call event of agent a at t0+at; opts adjust it.
func ev(a string, at time.Duration, opts ...func(*event.Event)) event.Event {
	e := event.Event{
		EventID: a + "-" + at.String(), Tenant: "t1", Kind: event.KindMessage, Time: t0.Add(at),
		Method: "tools/call", ToolName: "read_file", AgentID: a,
	}
	e.TraceID = e.EventID // OpenLLMetry Python: one trace per request
	e.SessionKey = e.TraceID
	for _, o := range opts {
		o(&e)
	}
	return e
}

func server(name, version string) func(*event.Event) {
	return func(e *event.Event) { e.ServerName, e.ServerVersion = name, version }
}

func initialize(name, version string) func(*event.Event) {
	return func(e *event.Event) {
		e.Method, e.ToolName, e.ServerName, e.ServerVersion = "initialize", "", name, version
	}
}

func sid(id string) func(*event.Event) {
	return func(e *event.Event) { e.SessionID, e.SessionKey = id, id }
}

func endpoint(client, addr string, port uint16) func(*event.Event) {
	return func(e *event.Event) { e.ClientName, e.ServerAddress, e.ServerPort = client, addr, port }
}

func transport(client, tr string) func(*event.Event) {
	return func(e *event.Event) { e.ClientName, e.Transport = client, tr }
}

func newMem(t testing.TB, cfg Config) *Enricher {
	t.Helper()
	x, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func enrich(t testing.TB, x *Enricher, evs ...event.Event) []event.Event {
	t.Helper()
	if err := x.Enrich(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestServerMemoryConnectionRule(t *testing.T) {
	type want struct{ name, version string }
	cases := []struct {
		name    string
		batches [][]event.Event // all but the last teach; the last is checked
		want    []want
	}{{
		name: "session id: later calls of the session get the server",
		batches: [][]event.Event{
			{ev("a", 0, sid("s1"), initialize("fs", "1.0"))},
			{ev("a", time.Minute, sid("s1")), ev("a", 2*time.Minute, sid("s1"))},
		},
		want: []want{{"fs", "1.0"}, {"fs", "1.0"}},
	}, {
		name: "session id known with one server while the agent talks to two",
		batches: [][]event.Event{
			{ev("a", 0, sid("s1"), initialize("fs", "1.0")), ev("a", time.Second, sid("s2"), initialize("fetch", "2.0"))},
			{ev("a", time.Minute, sid("s1")), ev("a", time.Minute, sid("s2")), ev("a", time.Minute)},
		},
		want: []want{{"fs", "1.0"}, {"fetch", "2.0"}, {"", ""}}, // no session id: the agent is ambiguous
	}, {
		name: "unknown session id falls back to the agent's only server",
		batches: [][]event.Event{
			{ev("a", 0, initialize("fs", "1.0"))}, // initialize before the server assigned the session id
			{ev("a", time.Minute, sid("s9"))},
		},
		want: []want{{"fs", "1.0"}},
	}, {
		name: "endpoint: client + server address and port",
		batches: [][]event.Event{
			{ev("a", 0, endpoint("cursor", "10.0.0.1", 8080), initialize("fs", "1")),
				ev("a", 0, endpoint("cursor", "10.0.0.2", 8080), initialize("fetch", "2"))},
			{ev("a", time.Minute, endpoint("cursor", "10.0.0.2", 8080)), ev("a", time.Minute, endpoint("cursor", "10.0.0.1", 8080)),
				ev("a", time.Minute, endpoint("cursor", "10.0.0.1", 9090))}, // unknown port: agent level, ambiguous
		},
		want: []want{{"fetch", "2"}, {"fs", "1"}, {"", ""}},
	}, {
		name: "transport when there is no address; two stdio servers of one client are ambiguous",
		batches: [][]event.Event{
			{ev("a", 0, transport("claude", "pipe"), initialize("fs", "1")),
				ev("a", 0, transport("claude", "tcp"), initialize("fetch", "2")),
				ev("a", 0, transport("code", "pipe"), initialize("git", "3")),
				ev("a", 0, transport("code", "pipe"), initialize("fs", "1"))},
			{ev("a", time.Minute, transport("claude", "pipe")), ev("a", time.Minute, transport("claude", "tcp")),
				ev("a", time.Minute, transport("code", "pipe"))},
		},
		want: []want{{"fs", "1"}, {"fetch", "2"}, {"", ""}},
	}, {
		name: "agent alone: exactly one server",
		batches: [][]event.Event{
			{ev("a", 0, initialize("fs", "1.0")), ev("b", 0, initialize("fetch", "2.0"))},
			{ev("a", time.Minute), ev("b", time.Minute), ev("c", time.Minute)},
		},
		want: []want{{"fs", "1.0"}, {"fetch", "2.0"}, {"", ""}},
	}, {
		name: "any event naming its server teaches, not only initialize",
		batches: [][]event.Event{
			{ev("a", 0, sid("s1"), server("fs", ""))},
			{ev("a", time.Minute, sid("s1"))},
		},
		want: []want{{"fs", ""}},
	}, {
		name: "events before the server was first seen are not filled",
		batches: [][]event.Event{
			{ev("a", time.Hour, initialize("fs", "1.0"))},
			{ev("a", time.Minute), ev("a", time.Hour)},
		},
		want: []want{{"", ""}, {"fs", "1.0"}},
	}, {
		name: "a teaching event later in the same batch counts (event time, not order)",
		batches: [][]event.Event{
			{ev("a", time.Minute), ev("a", 0, initialize("fs", "1.0"))},
		},
		want: []want{{"fs", "1.0"}, {"fs", "1.0"}},
	}, {
		name: "server upgraded: the version seen last before the event",
		batches: [][]event.Event{
			{ev("a", 0, initialize("fs", "1.0")), ev("a", time.Hour, initialize("fs", "1.1"))},
			{ev("a", time.Minute), ev("a", 2*time.Hour), ev("a", 3*time.Hour, server("fs", ""))},
		},
		want: []want{{"fs", "1.0"}, {"fs", "1.1"}, {"fs", "1.1"}},
	}, {
		name: "a server switch makes the agent ambiguous from the switch on",
		batches: [][]event.Event{
			{ev("a", 0, initialize("fs", "1.0")), ev("a", time.Hour, initialize("fs2", "1.0"))},
			{ev("a", time.Minute), ev("a", 2*time.Hour)},
		},
		want: []want{{"fs", "1.0"}, {"", ""}},
	}, {
		name: "filled events do not teach",
		batches: [][]event.Event{
			{ev("a", 0, initialize("fs", "1.0")), ev("a", time.Minute, server("evil", ""), func(e *event.Event) { e.Tags = []string{TagServer} })},
			{ev("a", 2*time.Minute)},
		},
		want: []want{{"fs", "1.0"}},
	}, {
		name: "other tenant, same agent id: separate state",
		batches: [][]event.Event{
			{ev("a", 0, initialize("fs", "1.0"))},
			{ev("a", time.Minute, func(e *event.Event) { e.Tenant = "t2" })},
		},
		want: []want{{"", ""}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newMem(t, Config{})
			var last []event.Event
			for _, b := range tc.batches {
				last = enrich(t, x, b...)
			}
			got := last[len(last)-len(tc.want):]
			for i, w := range tc.want {
				e := got[i]
				if e.ServerName != w.name || e.ServerVersion != w.version {
					t.Errorf("event %d: server %q %q, want %q %q", i, e.ServerName, e.ServerVersion, w.name, w.version)
				}
			}
		})
	}
}

func TestServerFillTags(t *testing.T) {
	x := newMem(t, Config{})
	enrich(t, x, ev("a", 0, sid("s1"), initialize("fs", "1.0")))
	evs := enrich(t, x,
		ev("a", time.Minute, sid("s1")),
		ev("a", time.Minute, sid("s1"), server("fs", "")),
		ev("a", time.Minute, sid("s1"), server("fs", "0.9")),
		ev("a", time.Minute, sid("s1"), func(e *event.Event) { e.Tags = []string{"secret:jwt"} }))
	for i, w := range [][]string{{TagServer}, {TagServerVersion}, nil, {"secret:jwt", TagServer}} {
		if !slices.Equal(evs[i].Tags, w) {
			t.Errorf("event %d: tags %q, want %q", i, evs[i].Tags, w)
		}
	}
	if evs[2].ServerVersion != "0.9" {
		t.Errorf("a version the event carries is kept: %q", evs[2].ServerVersion)
	}
	st := x.Stats()
	if st.FilledServer != 2 || st.FilledVersion != 3 {
		t.Errorf("stats: %+v", st)
	}
	// A tag slice handed out has no spare capacity: appending copies.
	tags := evs[0].Tags
	_ = append(tags, "x")
	if evs[1].Tags[0] != TagServerVersion {
		t.Fatal("an append to one event's tags changed another's")
	}
}

func TestDerivedSessionsIdleGap(t *testing.T) {
	x := newMem(t, Config{SessionGap: 30 * time.Minute})
	at := []time.Duration{0, 10 * time.Minute, 40 * time.Minute, 70 * time.Minute, 100*time.Minute + time.Second, 101 * time.Minute}
	var evs []event.Event
	for _, d := range at {
		evs = append(evs, ev("a", d, server("fs", "1")))
	}
	enrich(t, x, evs[:3]...) // the gap holds across batches
	enrich(t, x, evs[3:]...)
	k := agentKey{"t1", "a"}
	s1, s2 := sessionKey(k, "fs", t0.UnixNano()), sessionKey(k, "fs", t0.Add(100*time.Minute+time.Second).UnixNano())
	want := []string{s1, s1, s1, s1, s2, s2} // 70m is exactly 30m after 40m: still the same session
	for i, e := range evs {
		if e.SessionKey != want[i] {
			t.Errorf("event at %s: session %s, want %s", at[i], e.SessionKey, want[i])
		}
		if !e.HasTag(TagSession) {
			t.Errorf("event at %s: no %s tag", at[i], TagSession)
		}
	}
	if len(s1) != 35 || s1[:3] != "ds-" || s1 == s2 {
		t.Fatalf("keys %s %s", s1, s2)
	}
}

func TestDerivedSessionsPerServerAndUntouched(t *testing.T) {
	x := newMem(t, Config{})
	evs := enrich(t, x,
		ev("a", 0, server("fs", "1")),
		ev("a", time.Minute, server("fetch", "1")),
		ev("a", 2*time.Minute, server("fs", "1"), sid("real")),
		ev("a", 3*time.Minute, server("fs", "1"), func(e *event.Event) { e.ConversationID, e.SessionKey = "conv", "conv" }),
		ev("a", 4*time.Minute, server("fs", "1")),
		ev("b", 4*time.Minute, server("fs", "1")),
		ev("", 4*time.Minute, server("fs", "1"), func(e *event.Event) { e.TraceID, e.SessionKey = "tr", "tr" }),
	)
	if evs[0].SessionKey == evs[1].SessionKey {
		t.Error("two servers of one agent share a derived session")
	}
	if evs[0].SessionKey != evs[4].SessionKey {
		t.Error("calls to one server within the gap have different sessions")
	}
	if evs[5].SessionKey == evs[4].SessionKey {
		t.Error("two agents share a derived session")
	}
	if evs[2].SessionKey != "real" || evs[3].SessionKey != "conv" || evs[2].HasTag(TagSession) || evs[3].HasTag(TagSession) {
		t.Errorf("a real session or conversation id was replaced: %q %q", evs[2].SessionKey, evs[3].SessionKey)
	}
	if evs[6].AgentID != UnknownAgent || evs[6].SessionKey != "tr" {
		t.Errorf("event without agent, user or client: agent %q session %q", evs[6].AgentID, evs[6].SessionKey)
	}
}

// TestJoinedServerKeepsSessionAndTeachesNothing: a client observation
// whose server the call join filled (tag joined:server) keeps the session
// of the agent's observations without a server (those stored before the
// agent's calls were known to pair), and its server is not learnt for the
// connection: a later observation without a server stays without one.
func TestJoinedServerKeepsSessionAndTeachesNothing(t *testing.T) {
	x := newMem(t, Config{})
	joined := func(e *event.Event) { e.ServerName, e.Tags = "fs", []string{event.TagJoinedServer} }
	evs := enrich(t, x,
		ev("a", 0),
		ev("a", time.Second, joined),
		ev("a", 2*time.Second),
	)
	if evs[0].SessionKey != evs[1].SessionKey || evs[1].SessionKey != evs[2].SessionKey {
		t.Errorf("one connection's calls in sessions %q, %q (joined), %q", evs[0].SessionKey, evs[1].SessionKey, evs[2].SessionKey)
	}
	if evs[2].ServerName != "" || evs[2].HasTag(TagServer) {
		t.Errorf("a joined server was learnt for the connection: %q %v", evs[2].ServerName, evs[2].Tags)
	}
	// Sent by the observer itself, the same name is learnt (the control).
	evs = enrich(t, x, ev("b", 0, server("fs", "1")), ev("b", time.Second))
	if evs[1].ServerName != "fs" {
		t.Errorf("a server the observer sent was not learnt: %q", evs[1].ServerName)
	}
}

// TestJoinedAgentTeachesNothing: a server observation whose agent the call
// join filled (tag joined:agent) reaches the enrichment up to the join's
// wait after the agent's other observations, so its server is not learnt
// for that agent. Learnt, the agent-level guess for an observation without
// a server (fastmcp's duplicate client span) depended on which servers'
// observations the join had released yet: in CI it named the agent's
// first server for calls to three others.
func TestJoinedAgentTeachesNothing(t *testing.T) {
	x := newMem(t, Config{})
	joined := func(e *event.Event) {
		e.ServerName, e.Observer, e.Tags = "fs", event.ObserverServer, []string{event.TagJoinedAgent}
	}
	evs := enrich(t, x, ev("a", 0, joined), ev("a", time.Second))
	if evs[1].ServerName != "" || evs[1].HasTag(TagServer) {
		t.Errorf("a joined server observation taught its agent's connection: %q %v", evs[1].ServerName, evs[1].Tags)
	}
}

func TestDerivedSessionsOutOfOrder(t *testing.T) {
	// Arrival order 0, 40m, 20m: by event time the gaps are 20m and 20m,
	// so with a 30m gap it is one session.
	for _, split := range []bool{false, true} {
		x := newMem(t, Config{})
		evs := []event.Event{ev("a", 0), ev("a", 40*time.Minute), ev("a", 20*time.Minute), ev("b", 0)}
		if split {
			// Across batches the late event cannot merge two sessions
			// already handed out: it joins the nearer (the earlier on a tie).
			enrich(t, x, evs[:2]...)
			enrich(t, x, evs[2:]...)
			if evs[0].SessionKey == evs[1].SessionKey || evs[2].SessionKey != evs[0].SessionKey {
				t.Errorf("across batches: %s %s %s", evs[0].SessionKey, evs[1].SessionKey, evs[2].SessionKey)
			}
			continue
		}
		enrich(t, x, evs...)
		if evs[0].SessionKey != evs[1].SessionKey || evs[1].SessionKey != evs[2].SessionKey {
			t.Errorf("within a batch: %s %s %s", evs[0].SessionKey, evs[1].SessionKey, evs[2].SessionKey)
		}
		if want := sessionKey(agentKey{"t1", "a"}, "", t0.UnixNano()); evs[0].SessionKey != want {
			t.Errorf("key %s, want the hash of the earliest event %s", evs[0].SessionKey, want)
		}
	}
}

func TestNoEmptyAgent(t *testing.T) {
	x := newMem(t, Config{})
	evs := enrich(t, x,
		ev("", 0, func(e *event.Event) { e.UserID, e.ClientName = "alice", "cursor" }),
		ev("", time.Minute, func(e *event.Event) { e.ClientName = "cursor" }),
		ev("", 2*time.Minute),
		ev("", 3*time.Minute, func(e *event.Event) { e.Time = time.Time{} }),
		ev("agent-7", 4*time.Minute),
	)
	for i, w := range []string{"alice@cursor", "@cursor", UnknownAgent, UnknownAgent, "agent-7"} {
		if evs[i].AgentID != w {
			t.Errorf("event %d: agent %q, want %q", i, evs[i].AgentID, w)
		}
		if evs[i].HasTag(TagAgent) != (i < 4) {
			t.Errorf("event %d: tags %q", i, evs[i].Tags)
		}
	}
	// user@client keeps state like any agent; unknown-agent does not.
	if !evs[0].HasTag(TagSession) || evs[2].HasTag(TagSession) || evs[3].HasTag(TagSession) {
		t.Errorf("sessions: %q %q %q", evs[0].Tags, evs[2].Tags, evs[3].Tags)
	}
	if st := x.Stats(); st.FilledAgent != 4 || st.Agents != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestLRUKeepsUnflushedAgents(t *testing.T) {
	x := newMem(t, Config{MaxAgents: 2})
	for _, a := range []string{"a", "b", "c", "d"} {
		enrich(t, x, ev(a, 0, initialize("fs", "1")))
	}
	if st := x.Stats(); st.Agents != 4 || st.Evictions != 0 {
		t.Fatalf("unflushed agents were evicted: %+v", st)
	}
	if err := x.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := x.Stats(); st.Agents != 2 || st.Evictions != 2 {
		t.Fatalf("after flush: %+v", st)
	}
	// The most recently used stay.
	x.mu.Lock()
	_, c := x.agents[agentKey{"t1", "c"}]
	_, d := x.agents[agentKey{"t1", "d"}]
	x.mu.Unlock()
	if !c || !d {
		t.Fatal("evicted the wrong agents")
	}
}

func TestForgetDropsMemoryState(t *testing.T) {
	x := newMem(t, Config{})
	enrich(t, x, ev("a", 0, initialize("fs", "1")))
	x.Forget()
	evs := enrich(t, x, ev("a", time.Minute))
	if evs[0].ServerName != "" {
		t.Fatal("memory-only state survived Forget")
	}
	if st := x.Stats(); st.PendingServerRows != 0 || st.PendingSessionRows != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCallCountedOnce: the client's and the server's observation of one
// call (one call id, one agent) across a minute boundary: the first one
// the enricher sees counts the call, the later one is tagged
// call_already_counted (the rollup skips it); a retried batch gives each
// event the same answer; other agents, calls seen once, duplicates and
// tool definitions are left alone; Forget starts afresh.
func TestCallCountedOnce(t *testing.T) {
	x := newMem(t, Config{})
	call := func(id string) func(*event.Event) { return func(e *event.Event) { e.CallID = id } }
	client := ev("a1", 59*time.Second+990*time.Millisecond, call("trace1span1:tools/call:3"))
	srv := ev("a1", time.Minute+10*time.Millisecond, call("trace1span1:tools/call:3"), func(e *event.Event) { e.Observer = event.ObserverServer })
	other := ev("a2", time.Minute, call("trace1span1:tools/call:3")) // another agent: its own count
	once := ev("a1", 2*time.Minute)
	once.CallID = once.EventID // seen once
	dup := ev("a1", time.Minute+20*time.Millisecond, call("trace1span1:tools/call:3"), func(e *event.Event) { e.Tags = []string{event.TagDuplicate} })
	def := ev("a1", time.Minute+30*time.Millisecond, call("trace1span1:tools/list:2"), func(e *event.Event) { e.Kind = event.KindToolDefinition })
	def2 := def
	def2.EventID += "-2"

	batch := []event.Event{client, srv, other, once, dup, def, def2}
	tagged := func(evs []event.Event) []string {
		var out []string
		for _, e := range evs {
			if e.HasTag(TagCallCounted) {
				out = append(out, e.EventID)
			}
		}
		return out
	}
	want := []string{srv.EventID}
	if err := x.Enrich(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := tagged(batch); !slices.Equal(got, want) {
		t.Fatalf("tagged %v, want %v", got, want)
	}
	if n := x.Stats().CallCounted; n != 1 {
		t.Fatalf("CallCounted %d", n)
	}
	// The batch again (a retry after a failed insert): the same answer.
	again := []event.Event{client, srv, other, once, dup, def, def2}
	if err := x.Enrich(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if got := tagged(again); !slices.Equal(got, want) {
		t.Fatalf("retried batch: tagged %v, want %v", got, want)
	}
	// The server's observation first: it counts, the client's is tagged.
	x.Forget()
	rev := []event.Event{srv, client}
	if err := x.Enrich(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	if got := tagged(rev); !slices.Equal(got, []string{client.EventID}) {
		t.Fatalf("server first: tagged %v, want the client's", got)
	}
}

// TestCallMemoryBounded: the memory holds the most recent maxCalls/2 to
// maxCalls calls; an older call is forgotten, so its later observation is
// counted again (as without the tag).
func TestCallMemoryBounded(t *testing.T) {
	var c calls
	a := newAgentState(agentKey{"t1", "a1"})
	obs := func(i int, side string) (*agentState, *event.Event) {
		return a, &event.Event{EventID: side + strconv.Itoa(i), Tenant: "t1", AgentID: "a1", Kind: event.KindMessage, CallID: "c" + strconv.Itoa(i)}
	}
	for i := 0; i < maxCalls; i++ {
		if c.counted(obs(i, "client")) {
			t.Fatalf("first observation of call %d tagged", i)
		}
	}
	if c.len() != maxCalls {
		t.Fatalf("memory %d calls, want %d", c.len(), maxCalls)
	}
	if !c.counted(obs(0, "server")) || !c.counted(obs(maxCalls-1, "server")) {
		t.Fatal("a remembered call's second observation not tagged")
	}
	if c.counted(obs(maxCalls, "client")) { // a new generation: calls 0 .. maxCalls/2-1 go
		t.Fatal("a new call tagged")
	}
	if c.len() != maxCalls/2+1 {
		t.Fatalf("memory %d calls after the turn, want %d", c.len(), maxCalls/2+1)
	}
	if c.counted(obs(0, "server")) {
		t.Fatal("call 0 (forgotten) tagged")
	}
	if !c.counted(obs(maxCalls/2, "server")) || !c.counted(obs(maxCalls, "server")) {
		t.Fatal("a call of the kept generations not tagged")
	}
}
