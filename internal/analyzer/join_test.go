package analyzer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/calljoin"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/enrich"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// joinHalves are the two observations of call i as the bare MCP SDK
// exports them from two processes: the client knows agent-A and no
// server; the server knows server fs and names itself (server:fs-proc).
func joinHalves(i int) (client, server event.Event) {
	trace, span := fmt.Sprintf("%032x", 0xca11000+i), fmt.Sprintf("%016x", 0xc0000+i)
	t := base.Add(time.Duration(i) * time.Second)
	client = event.Event{EventID: fmt.Sprintf("client-%03d", i), Tenant: "acme", Kind: event.KindMessage, Time: t,
		Source: event.SourceSpan, Observer: event.ObserverClient, TraceID: trace, SpanID: span,
		Method: "tools/call", RequestID: fmt.Sprint(i + 1), AgentID: "agent-A", ServiceName: "agent-A",
		ToolName: "read_file", Outcome: event.OutcomeOK}
	client.CallID = event.CallIDOf(&client)
	server = event.Event{EventID: fmt.Sprintf("server-%03d", i), Tenant: "acme", Kind: event.KindMessage, Time: t.Add(time.Millisecond),
		Source: event.SourceSpan, Observer: event.ObserverServer, TraceID: trace, SpanID: fmt.Sprintf("%016x", 0x5e000+i),
		ParentSpanID: span, Method: "tools/call", RequestID: fmt.Sprint(i + 1), AgentID: "server:fs-proc",
		ServiceName: "fs-proc", ServerName: "fs", ServerVersion: "1.0", ToolName: "read_file", Outcome: event.OutcomeOK}
	server.CallID = event.CallIDOf(&server)
	return client, server
}

// produceTo writes each event as one record to one partition (the halves
// of a call on different partitions, as two agents' keys would put them).
func produceTo(t testing.TB, brokers []string, topic string, partition int32, evs []event.Event) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range evs {
		v, err := event.Marshal(evs[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(evs[i].PartitionKey()), Value: v, Partition: partition})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// neverPairs makes agent-A an agent whose calls are known not to pair: a
// client half of it with no server peer, released unpaired after the
// wait and stored (the ingest role learns it on the way back). Then its
// client halves are stored at once, with a notice to the join. It returns
// that client half and the events stored before it.
func neverPairs(t testing.TB, brokers []string, topic string, st *store.Store) event.Event {
	t.Helper()
	lone, _ := joinHalves(98)
	// Half an hour before the other calls: no server the enrichment
	// learns from them is known then, so a replay fills none either.
	lone.Time = base.Add(-30 * time.Minute)
	before := distinct(t, st)
	produceTo(t, brokers, topic, 0, []event.Event{lone})
	testbed.WaitUntil(t, "a client half without peer stored", time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == before+1, fmt.Sprint(n)
	})
	return lone
}

type storedRow struct {
	id, agent, server string
	tags              []string
}

func storedRows(t testing.TB, st *store.Store, db string) []storedRow {
	t.Helper()
	rows, err := st.Conn().Query(context.Background(), "SELECT event_id, agent_id, server_name, tags FROM "+db+".events WHERE tenant = 'acme' ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.id, &r.agent, &r.server, &r.tags); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestCallJoinEndToEnd: the client and server observations of N calls
// reach the events topic on different partitions, exported separately (the
// client's with its agent and no server, the server's with its server and
// a fallback agent), in either order. The ingest role diverts them, the
// join completes them from each other: ClickHouse has 2N rows, every one
// with agent-A and server fs, and the calls rollup counts N calls. A server
// observation without a client peer is stored after call_join_wait with
// its fallback agent, counted once.
func TestCallJoinEndToEnd(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: "cj", DeadLetterTopic: "cj.dlq"}
	ensureTopics(t, kc)
	enr, err := enrich.New(enrich.Config{}, enrich.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wait := 2 * time.Second
	a, stop := running(t, Options{Kafka: kc, Store: st, Enricher: enr,
		Config: Config{BatchInterval: 100 * time.Millisecond, CallJoinWait: &wait}})
	testbed.WaitUntil(t, "join loop assigned", time.Minute, func() (bool, string) {
		a.roleMu.Lock()
		defer a.roleMu.Unlock()
		st := a.roles[roleJoin]
		return st != nil && st.assigned == 3, fmt.Sprint(st)
	})
	const first, n = 5, 11
	var clients, servers []event.Event
	for i := 0; i < n; i++ {
		c, s := joinHalves(i)
		clients, servers = append(clients, c), append(servers, s)
	}
	// Round 0: a client half of agent-A waits (an agent not known yet)
	// and is released unpaired.
	loneClient := neverPairs(t, k.Brokers, "cj", st)
	// Round 1: agent-A's calls are known not to pair, so its client halves
	// are stored at once (a notice goes to the join); the server halves, on
	// another partition, adopt agent-A from the notices.
	produceTo(t, k.Brokers, "cj", 0, clients[:first])
	produceTo(t, k.Brokers, "cj", 1, servers[:first])
	testbed.WaitUntil(t, "round 1 stored", time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == 2*first+1, fmt.Sprint(n)
	})
	// Round 2: agent-A's calls pair now, so its client halves wait again.
	// The server halves go first and are held; then the client halves.
	produceTo(t, k.Brokers, "cj", 1, servers[first:])
	for deadline := time.Now().Add(30 * time.Second); value(a.m.joinHeld) != n-first; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the join holds %v observations, want round 2's %d server halves", value(a.m.joinHeld), n-first)
			break
		}
	}
	produceTo(t, k.Brokers, "cj", 2, clients[first:])
	// A server observation with no client peer.
	_, lone := joinHalves(99)
	produceTo(t, k.Brokers, "cj", 0, []event.Event{lone})
	testbed.WaitUntil(t, "every observation stored", time.Minute, func() (bool, string) {
		got := distinct(t, st)
		return got == 2*n+2, fmt.Sprint(got)
	})
	rows := storedRows(t, st, ch.Database)
	if len(rows) != 2*n+2 {
		t.Errorf("%d rows, want %d (each observation once)", len(rows), 2*n+2)
	}
	for _, r := range rows {
		if r.id == loneClient.EventID {
			if r.agent != "agent-A" || r.server != "" || !slices.Contains(r.tags, calljoin.TagUnpaired) {
				t.Errorf("lone client observation: agent %q server %q tags %v", r.agent, r.server, r.tags)
			}
			continue
		}
		if r.id == lone.EventID {
			if r.agent != "server:fs-proc" || r.server != "fs" || !slices.Contains(r.tags, calljoin.TagUnpaired) {
				t.Errorf("lone server observation: agent %q server %q tags %v", r.agent, r.server, r.tags)
			}
			continue
		}
		if r.agent != "agent-A" || r.server != "fs" && !(r.id < "client-005" && r.server == "") {
			t.Errorf("%s: agent %q server %q tags %v, want agent-A, fs", r.id, r.agent, r.server, r.tags)
		}
		switch {
		case r.id >= "client-005" && r.id < "server":
			if !slices.Contains(r.tags, calljoin.TagJoinedServer) || !slices.Contains(r.tags, calljoin.TagJoined) {
				t.Errorf("%s (waited for its server): tags %v", r.id, r.tags)
			}
		case r.id >= "server":
			if !slices.Contains(r.tags, calljoin.TagJoinedAgent) || !slices.Contains(r.tags, calljoin.TagJoined) {
				t.Errorf("%s: tags %v", r.id, r.tags)
			}
		}
	}
	q := store.CallsQuery{Tenant: "acme", From: base.Add(-time.Hour), To: base.Add(time.Hour)}
	testbed.WaitUntil(t, "calls counted", 30*time.Second, func() (bool, string) {
		total, err := st.CallsTotal(context.Background(), q)
		return err == nil && total == n+2, fmt.Sprint(total, err)
	})
	// Every call of agent-A once; round 1's calls count under the
	// client's row (server unknown when it was stored), round 2's under fs.
	q.AgentIDs = []string{"agent-A"}
	if total, err := st.CallsTotal(context.Background(), q); err != nil || total != n+1 {
		t.Errorf("calls of agent-A: %d (%v), want %d", total, err, n+1)
	}
	q.ServerNames = []string{"fs"}
	if total, err := st.CallsTotal(context.Background(), q); err != nil || total < n-first {
		t.Errorf("calls of agent-A on fs: %d (%v), want at least %d", total, err, n-first)
	}
	stop()
	if got := value(a.m.joinDiverted.WithLabelValues("notice")); got != first {
		t.Errorf("notices %v, want %d (round 1's client halves)", got, first)
	}
	if got := value(a.m.joinDiverted.WithLabelValues("half")); got != float64(n+(n-first)+2) {
		t.Errorf("halves diverted %v, want %d", got, n+(n-first)+2)
	}
	if got := value(a.m.joinTotal.WithLabelValues(calljoin.ResultUnpaired)); got != 2 {
		t.Errorf("unpaired %v, want 2", got)
	}
}

// TestCallJoinReplayAfterLostCommit: the join released every call but its
// offsets were never committed (a crash between the releases and the
// commit). The next instance reads the calls topic again, joins the same
// halves again and releases them again (same event ids): the ingest role
// stores and detects them a second time, yet the stored events, the calls
// rollup and the findings do not change (docs/analyzer.md, "Call join").
func TestCallJoinReplayAfterLostCommit(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "cjr", DeadLetterTopic: "cjr.dlq", FindingsTopic: "cjr.findings"}
	ensureTopics(t, kc)
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	wait := 2 * time.Second
	start := func(hook func() error) (*Analyzer, func()) {
		eng, err := detect.New(pack, detect.Options{})
		if err != nil {
			t.Fatal(err)
		}
		enr, err := enrich.New(enrich.Config{}, enrich.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return running(t, Options{Kafka: kc, Store: st, Enricher: enr, Detector: eng, BeforeJoinCommit: hook,
			Config: Config{BatchInterval: 100 * time.Millisecond, CallJoinWait: &wait}})
	}
	const n = 8
	var clients, servers []event.Event
	for i := 0; i < n; i++ {
		c, s := joinHalves(i)
		c.ToolName, s.ToolName = "delete_file", "delete_file" // a finding per call (mcp-destructive-command)
		clients, servers = append(clients, c), append(servers, s)
	}
	lost := errors.New("crash before the join's commit")
	a1, stop1 := start(func() error { return lost })
	// Round 0 (a client half without peer: agent-A does not pair) makes
	// round 1 adopt (client halves stored at once, notices); round 2
	// pairs (both halves held).
	neverPairs(t, k.Brokers, "cjr", st)
	produceTo(t, k.Brokers, "cjr", 1, servers[:n/2])
	produceTo(t, k.Brokers, "cjr", 0, clients[:n/2])
	testbed.WaitUntil(t, "round 1 stored", time.Minute, func() (bool, string) {
		got := distinct(t, st)
		return got == n+1, fmt.Sprint(got)
	})
	produceTo(t, k.Brokers, "cjr", 1, servers[n/2:])
	testbed.WaitUntil(t, "round 2's server halves held", time.Minute, func() (bool, string) {
		h := value(a1.m.joinHeld)
		return h == n/2, fmt.Sprint(h)
	})
	produceTo(t, k.Brokers, "cjr", 0, clients[n/2:])
	testbed.WaitUntil(t, "every observation stored", time.Minute, func() (bool, string) {
		got := distinct(t, st)
		return got == 2*n+1, fmt.Sprint(got)
	})
	// The finding ids and rows; suppressed_count (match findings counted
	// on their window's finding) is logged, not compared: a re-released
	// observation is a new record at a new offset, which the window's
	// replay guard (the source position, the last 8 finding ids) does not
	// recognise, as for a collector retry's duplicate (docs/analyzer.md).
	var suppressed uint64
	findings := func() (ids, rows uint64) {
		if err := st.Conn().QueryRow(context.Background(), "SELECT uniqExact(finding_id), count(), sum(suppressed_count) FROM "+ch.Database+".findings FINAL WHERE rule_id = 'mcp-destructive-command'").Scan(&ids, &rows, &suppressed); err != nil {
			t.Fatal(err)
		}
		return ids, rows
	}
	testbed.WaitUntil(t, "findings stored", time.Minute, func() (bool, string) {
		ids, _ := findings()
		return ids > 0, fmt.Sprint(ids)
	})
	stop1()
	released1 := 0.0
	for _, r := range calljoin.Results {
		released1 += value(a1.m.joinTotal.WithLabelValues(r))
	}
	ids1, rows1 := findings()
	suppressed1 := suppressed
	q := store.CallsQuery{Tenant: "acme", From: base.Add(-time.Hour), To: base.Add(time.Hour)}
	if total, err := st.CallsTotal(context.Background(), q); err != nil || total != n+1 {
		t.Fatalf("calls before the replay: %d (%v), want %d", total, err, n+1)
	}

	a2, stop2 := start(nil)
	testbed.WaitUntil(t, "the same halves released again and stored", time.Minute, func() (bool, string) {
		released := 0.0
		for _, r := range calljoin.Results {
			released += value(a2.m.joinTotal.WithLabelValues(r))
		}
		return released >= released1 && a2.Inserted() >= uint64(released1), fmt.Sprint(released, " released, ", a2.Inserted(), " inserted of ", released1)
	})
	stop2()
	if got := distinct(t, st); got != 2*n+1 {
		t.Errorf("%d distinct events after the replay, want %d", got, 2*n+1)
	}
	if total, err := st.CallsTotal(context.Background(), q); err != nil || total != n+1 {
		t.Errorf("calls after the replay: %d (%v), want %d", total, err, n+1)
	}
	if ids2, rows2 := findings(); ids2 != ids1 || rows2 != rows1 {
		t.Errorf("findings after the replay: %d ids in %d rows, before %d in %d", ids2, rows2, ids1, rows1)
	}
	if paired := value(a2.m.joinTotal.WithLabelValues(calljoin.ResultPaired)); paired != n {
		t.Errorf("the replay paired %v observations, want round 2's %d", paired, n)
	}
	t.Logf("%v observations released twice; %d findings of mcp-destructive-command; suppressed_count %d before the replay, %d after", released1, ids1, suppressed1, suppressed)
}

// TestCallJoinOffWithoutTopic: with create_topics off and no calls topic,
// the join is off (halves are stored as they come) instead of the ingest
// role stalling on a produce that cannot succeed; once the topic exists it
// is on.
func TestCallJoinOffWithoutTopic(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	off := false
	kc := kafka.Config{Brokers: k.Brokers, Topic: "nt", CreateTopics: &off}
	a, err := New(Options{Kafka: kc, Store: st, Config: Config{AdminAddr: "-"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if on, err := a.callsTopicReady(ctx); on || err != nil {
		t.Fatalf("no calls topic: on %v, err %v; want off", on, err)
	}
	if err := k.CreateTopic(ctx, "nt.calls", 2); err != nil {
		t.Fatal(err)
	}
	if on, err := a.callsTopicReady(ctx); !on || err != nil {
		t.Fatalf("calls topic created: on %v, err %v; want on", on, err)
	}
}

// TestCallJoinRebalance: server halves are held by one instance; a second
// instance joins the groups (the calls partitions it takes are revoked
// from the first, whose held state for them is dropped, and read again by
// the new owner from the committed offset); then the client halves
// arrive. Every call is paired, none waits out, each is counted once.
func TestCallJoinRebalance(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 4, Topic: "cjb", DeadLetterTopic: "cjb.dlq"}
	ensureTopics(t, kc)
	wait := time.Minute // nothing may wait out during the test
	start := func() *Analyzer {
		enr, err := enrich.New(enrich.Config{}, enrich.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := running(t, Options{Kafka: kc, Store: st, Enricher: enr,
			Config: Config{BatchInterval: 100 * time.Millisecond, CallJoinWait: &wait, SessionTimeout: 6 * time.Second}})
		return a
	}
	assigned := func(a *Analyzer) int {
		a.roleMu.Lock()
		defer a.roleMu.Unlock()
		if st := a.roles[roleJoin]; st != nil {
			return st.assigned
		}
		return 0
	}
	a1 := start()
	testbed.WaitUntil(t, "first instance owns the calls topic", time.Minute, func() (bool, string) {
		return assigned(a1) == 4, fmt.Sprint(assigned(a1))
	})
	const n = 24
	var clients, servers []event.Event
	for i := 0; i < n; i++ {
		c, s := joinHalves(i)
		clients, servers = append(clients, c), append(servers, s)
	}
	// One paired call first, so agent-A's client halves wait for their
	// server halves (the adaptive rule) rather than being stored at once.
	produceTo(t, k.Brokers, "cjb", 1, servers[:1])
	produceTo(t, k.Brokers, "cjb", 0, clients[:1])
	testbed.WaitUntil(t, "the first call stored", time.Minute, func() (bool, string) {
		got := distinct(t, st)
		return got == 2, fmt.Sprint(got)
	})
	for i := 1; i < n; i++ {
		produceTo(t, k.Brokers, "cjb", int32(i%4), servers[i:i+1])
	}
	testbed.WaitUntil(t, "server halves held", time.Minute, func() (bool, string) {
		h := value(a1.m.joinHeld)
		return h == n-1, fmt.Sprint(h)
	})
	a2 := start()
	testbed.WaitUntil(t, "the calls partitions shared", time.Minute, func() (bool, string) {
		x, y := assigned(a1), assigned(a2)
		return x > 0 && y > 0 && x+y == 4, fmt.Sprint(x, "+", y)
	})
	testbed.WaitUntil(t, "the moved halves held again by their new owner", time.Minute, func() (bool, string) {
		h1, h2 := value(a1.m.joinHeld), value(a2.m.joinHeld)
		return h1+h2 == n-1 && h2 > 0, fmt.Sprint(h1, "+", h2)
	})
	for i := 1; i < n; i++ {
		produceTo(t, k.Brokers, "cjb", int32((i+1)%4), clients[i:i+1])
	}
	testbed.WaitUntil(t, "every observation stored", time.Minute, func() (bool, string) {
		got := distinct(t, st)
		return got == 2*n, fmt.Sprint(got)
	})
	// Every row names agent-A and fs: the new owner of agent-A's events
	// partition (the events topic rebalanced too) does not know agent-A,
	// so its client halves wait for their peers like the old owner's.
	for _, r := range storedRows(t, st, ch.Database) {
		if r.agent != "agent-A" || r.server != "fs" {
			t.Errorf("%s: agent %q server %q tags %v", r.id, r.agent, r.server, r.tags)
		}
	}
	q := store.CallsQuery{Tenant: "acme", From: base.Add(-time.Hour), To: base.Add(time.Hour)}
	testbed.WaitUntil(t, "calls counted once", 30*time.Second, func() (bool, string) {
		total, err := st.CallsTotal(context.Background(), q)
		return err == nil && total == n, fmt.Sprint(total, err)
	})
	for _, a := range []*Analyzer{a1, a2} {
		if u := value(a.m.joinTotal.WithLabelValues(calljoin.ResultUnpaired)) + value(a.m.joinTotal.WithLabelValues(calljoin.ResultEvicted)); u != 0 {
			t.Errorf("%v observations released unpaired", u)
		}
	}
}
