package enrich

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// chDB is a migrated database on the shared test server.
type chDB struct {
	ch *testbed.CH
	st *store.Store
}

func newCH(t *testing.T) *chDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch := testbed.ClickHouse(t)
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return &chDB{ch: ch, st: st}
}

// enricher is a new Enricher on the database: a restart, or another
// instance taking the partitions over.
func (d *chDB) enricher(t *testing.T, cfg Config) *Enricher {
	t.Helper()
	x, err := New(cfg, Options{Conn: d.st.Conn(), Database: d.ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func flush(t *testing.T, x *Enricher) {
	t.Helper()
	if err := x.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestClickHouseServerMemorySurvivesRestart(t *testing.T) {
	d := newCH(t)
	x := d.enricher(t, Config{})
	enrich(t, x,
		ev("a", 0, sid("s1"), initialize("fs", "1.0")),
		ev("a", time.Second, endpoint("cursor", "10.0.0.5", 443), initialize("fetch", "2.0")),
		ev("b", 0, transport("claude", "pipe"), initialize("git", "3.0")))
	evs := enrich(t, x, ev("a", time.Minute, sid("s1")))
	if evs[0].ServerName != "fs" {
		t.Fatalf("across batches: %q", evs[0].ServerName)
	}
	flush(t, x)
	if st := x.Stats(); st.PendingServerRows != 0 || st.RowsWritten == 0 || st.Loads != 2 {
		t.Fatalf("stats after flush: %+v", st)
	}

	// Restart: a new Enricher loads the agents from ClickHouse.
	y := d.enricher(t, Config{})
	evs = enrich(t, y,
		ev("a", time.Hour, sid("s1")),
		ev("a", time.Hour, endpoint("cursor", "10.0.0.5", 443)),
		ev("a", time.Hour), // agent a talked to two servers
		ev("b", time.Hour, transport("claude", "pipe")),
		ev("b", time.Hour, sid("new")), // unknown session: b's only server
	)
	for i, w := range []string{"fs", "fetch", "", "git", "git"} {
		if evs[i].ServerName != w {
			t.Errorf("after restart, event %d: server %q, want %q", i, evs[i].ServerName, w)
		}
	}
	if evs[0].ServerVersion != "1.0" || !evs[0].HasTag(TagServer) {
		t.Errorf("version or tag missing: %+v", evs[0])
	}
	st := y.Stats()
	if st.Loads != 2 || st.AgentsLoaded != 2 || st.Ambiguous != 1 {
		t.Errorf("stats after restart: %+v", st)
	}

	// What the tables hold, as a reader aggregates it.
	rows, err := d.st.Conn().Query(context.Background(), "SELECT agent_id, conn_kind, conn_client, conn_target, conn_port, server_name, server_version, min(first_seen_ns)"+
		" FROM `"+d.ch.Database+"`.enrich_servers GROUP BY agent_id, conn_kind, conn_client, conn_target, conn_port, server_name, server_version"+
		" ORDER BY agent_id, conn_kind, conn_target, server_name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var agent, kind, client, target, name, version string
		var port uint16
		var first uint64
		if err := rows.Scan(&agent, &kind, &client, &target, &port, &name, &version, &first); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s|%s:%d %s@%s +%s", agent, kind, client, target, port, name, version, time.Duration(int64(first)-t0.UnixNano())))
	}
	want := []string{
		"a agent |:0 fetch@2.0 +1s",
		"a agent |:0 fs@1.0 +0s",
		"a session |s1:0 fs@1.0 +0s",
		"a endpoint cursor|10.0.0.5:443 fetch@2.0 +1s",
		"b agent |:0 git@3.0 +0s",
		"b transport claude|pipe:0 git@3.0 +0s",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("enrich_servers:\n got %q\nwant %q", got, want)
	}
}

// scenario is three batches of three agents: a (OpenLLMetry Python: one
// initialize, then calls naming no server or session, with an idle gap), b
// (session ids, two servers) and c (events out of time order, no server).
func scenario() [][]event.Event {
	m := time.Minute
	return [][]event.Event{{
		ev("a", 0, initialize("fs", "1.0")),
		ev("a", 1*m), ev("a", 5*m),
		ev("b", 0, sid("b1"), initialize("fs", "1.0")), ev("b", 0, sid("b2"), initialize("fetch", "2.0")),
		ev("b", 1*m, sid("b1")),
		ev("c", 10*m), ev("c", 2*m),
	}, {
		ev("a", 20*m), ev("a", 70*m), // 50 min idle: a new session
		ev("b", 3*m, sid("b2")), ev("b", 4*m),
		ev("c", 60*m), ev("c", 45*m), ev("c", 46*m), // 35 min after 10m: a new session
	}, {
		ev("a", 80*m), ev("a", 15*m), // late: back in the first session
		ev("a", 200*m, initialize("fs", "1.1")), ev("a", 201*m),
		ev("c", 20*m), ev("c", 300*m), // 20m: nearer the first session than the second
	}}
}

// result is what enrichment decided for one event.
type result struct {
	Agent, Server, Version, Session string
	Tags                            []string
}

func results(evs []event.Event) []result {
	out := make([]result, len(evs))
	for i, e := range evs {
		out[i] = result{e.AgentID, e.ServerName, e.ServerVersion, e.SessionKey, e.Tags}
	}
	return out
}

func run(t *testing.T, x *Enricher, batches [][]event.Event, flushEach bool) [][]result {
	t.Helper()
	var out [][]result
	for _, b := range batches {
		out = append(out, results(enrich(t, x, b...)))
		if flushEach {
			flush(t, x)
		}
	}
	return out
}

func TestClickHouseReplayGivesSameKeys(t *testing.T) {
	d := newCH(t)
	first := run(t, d.enricher(t, Config{}), scenario(), true)

	// Sanity of the scenario itself.
	a := first[0][1].Session
	if a != first[0][2].Session || a != first[1][0].Session || a == first[1][1].Session || first[2][1].Session != a {
		t.Errorf("agent a sessions: %+v %+v %+v", first[0], first[1], first[2])
	}
	if first[1][1].Server != "fs" || first[2][3].Version != "1.1" || first[0][5].Server != "fs" || first[1][2].Server != "fetch" {
		t.Errorf("servers: %+v %+v", first[1], first[2])
	}
	if c := first[0][6].Session; c != first[0][7].Session || first[1][4].Session == c || first[1][4].Session != first[1][5].Session ||
		first[1][4].Session != first[1][6].Session || first[2][4].Session != c || first[2][5].Session == c || first[2][5].Session == first[1][4].Session {
		t.Errorf("agent c sessions: %+v %+v %+v", first[0], first[1], first[2])
	}
	if b := first[1][3]; b.Server != "" || b.Session == "" { // b has two servers: no fill, own derived session
		t.Errorf("agent b without a session id: %+v", b)
	}

	// The same batches in memory only: persistence changes nothing.
	if mem := run(t, newMem(t, Config{}), scenario(), true); !reflect.DeepEqual(mem, first) {
		t.Errorf("memory-only run differs:\n%+v\n%+v", mem, first)
	}

	// A crash after the flush of batch 3 but before its commit replays it.
	replay := func(name string, from int) {
		t.Helper()
		got := run(t, d.enricher(t, Config{}), scenario()[from:], true)
		if !reflect.DeepEqual(got, first[from:]) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, first[from:])
		}
	}
	replay("replay of batch 3", 2)
	replay("replay of batches 2 and 3", 1)
	replay("replay of everything", 0)

	// Pipelined: batch 3 enriched before batch 2's flush, one flush for
	// both, crash before either is committed: both are replayed with a
	// state that already holds them.
	d2 := newCH(t)
	x := d2.enricher(t, Config{})
	sc := scenario()
	enrich(t, x, sc[0]...)
	flush(t, x)
	enrich(t, x, sc[1]...)
	enrich(t, x, sc[2]...)
	flush(t, x)
	got := run(t, d2.enricher(t, Config{}), scenario()[1:], false)
	if !reflect.DeepEqual(got, first[1:]) {
		t.Errorf("pipelined replay:\n got %+v\nwant %+v", got, first[1:])
	}
}

func TestClickHouseForgetReloads(t *testing.T) {
	d := newCH(t)
	x := d.enricher(t, Config{})
	b1 := enrich(t, x, ev("a", 0, initialize("fs", "1.0")), ev("a", time.Minute))
	flush(t, x)
	x.Forget() // partitions revoked after the flush
	evs := enrich(t, x, ev("a", 2*time.Minute))
	if evs[0].ServerName != "fs" || evs[0].SessionKey != b1[1].SessionKey {
		t.Fatalf("after Forget: %+v", evs[0])
	}
	if st := x.Stats(); st.Loads != 4 || st.AgentsLoaded != 2 {
		t.Fatalf("stats: %+v", st)
	}

	// Partitions lost before a flush: the changes are dropped, the batch
	// (not committed) is replayed by the next owner and gives the same.
	lost := enrich(t, x, ev("a", 3*time.Hour), ev("b", 0, initialize("git", "1")), ev("b", time.Minute))
	x.Forget()
	if st := x.Stats(); st.PendingServerRows != 0 || st.PendingSessionRows != 0 || st.Agents != 0 {
		t.Fatalf("Forget kept state: %+v", st)
	}
	other := d.enricher(t, Config{})
	again := enrich(t, other, ev("a", 3*time.Hour), ev("b", 0, initialize("git", "1")), ev("b", time.Minute))
	if !reflect.DeepEqual(results(lost), results(again)) {
		t.Fatalf("replay after a lost partition:\n%+v\n%+v", results(lost), results(again))
	}
}

func TestClickHouseEvictedAgentReloads(t *testing.T) {
	d := newCH(t)
	x := d.enricher(t, Config{MaxAgents: 1})
	ref := newMem(t, Config{})
	for i := range 3 {
		for _, a := range []string{"a", "b", "c"} {
			at := time.Duration(i) * time.Minute
			var b []event.Event
			if i == 0 {
				b = []event.Event{ev(a, at, initialize("srv-"+a, "1"))}
			} else {
				b = []event.Event{ev(a, at)}
			}
			want := results(enrich(t, ref, cloneEvents(b)...))
			got := results(enrich(t, x, b...))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d agent %s: %+v, want %+v", i, a, got, want)
			}
			flush(t, x)
		}
	}
	if st := x.Stats(); st.Evictions < 6 || st.AgentsLoaded < 7 || st.Agents != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func cloneEvents(evs []event.Event) []event.Event {
	out := make([]event.Event, len(evs))
	copy(out, evs)
	return out
}

func TestClickHouseLoadErrorChangesNothing(t *testing.T) {
	d := newCH(t)
	x, err := New(Config{}, Options{Conn: d.st.Conn(), Database: "no_such_database"})
	if err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{ev("", 0, func(e *event.Event) { e.ClientName = "cursor" }), ev("a", time.Minute)}
	before := cloneEvents(evs)
	if err := x.Enrich(context.Background(), evs); err == nil {
		t.Fatal("no error")
	}
	if !reflect.DeepEqual(evs, before) {
		t.Fatalf("a failed Enrich changed events:\n%+v\n%+v", evs, before)
	}
	if st := x.Stats(); st.LoadErrors != 1 || st.Agents != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClickHouseFlushFailureKeepsChanges(t *testing.T) {
	d := newCH(t)
	ctx := context.Background()
	x := d.enricher(t, Config{})
	enrich(t, x, ev("a", 0, initialize("fs", "1.0")), ev("a", time.Minute))
	conn := d.st.Conn()
	if err := conn.Exec(ctx, "RENAME TABLE `"+d.ch.Database+"`.enrich_sessions TO `"+d.ch.Database+"`.enrich_sessions_away"); err != nil {
		t.Fatal(err)
	}
	if err := x.Flush(ctx); err == nil {
		t.Fatal("flush without the table succeeded")
	}
	// Changes made meanwhile are kept too.
	enrich(t, x, ev("a", 2*time.Minute))
	st := x.Stats()
	if st.FlushErrors != 1 || st.PendingSessionRows != 1 || st.PendingServerRows != 1 {
		t.Fatalf("after a failed flush: %+v", st)
	}
	if err := conn.Exec(ctx, "RENAME TABLE `"+d.ch.Database+"`.enrich_sessions_away TO `"+d.ch.Database+"`.enrich_sessions"); err != nil {
		t.Fatal(err)
	}
	flush(t, x)
	var last uint64
	if err := conn.QueryRow(ctx, "SELECT max(last_ns) FROM `"+d.ch.Database+"`.enrich_sessions").Scan(&last); err != nil {
		t.Fatal(err)
	}
	if int64(last) != t0.Add(2*time.Minute).UnixNano() {
		t.Fatalf("session last_ns %d", last)
	}
	evs := enrich(t, d.enricher(t, Config{}), ev("a", 3*time.Minute))
	if evs[0].ServerName != "fs" {
		t.Fatalf("server lost by the failed flush: %+v", evs[0])
	}
}

// TestClickHouseEnrichWhileFlushing runs Flush in another goroutine, as the
// analyzer does while it enriches the next batch (run with -race).
func TestClickHouseEnrichWhileFlushing(t *testing.T) {
	d := newCH(t)
	x := d.enricher(t, Config{MaxAgents: 4})
	ref := newMem(t, Config{})
	var wg sync.WaitGroup
	for i := range 20 {
		var b []event.Event
		for a := range 8 {
			name := fmt.Sprintf("agent-%d", a)
			at := time.Duration(i) * 7 * time.Minute
			if i == 0 {
				b = append(b, ev(name, at, initialize("srv", "1")))
			}
			b = append(b, ev(name, at))
		}
		want := results(enrich(t, ref, cloneEvents(b)...))
		got := results(enrich(t, x, b...)) // while the previous batch's flush runs
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batch %d:\n got %+v\nwant %+v", i, got, want)
		}
		wg.Wait()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := x.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := x.Stats(); st.FlushErrors != 0 || st.Agents > 8 {
		t.Fatalf("stats %+v", st)
	}
}
