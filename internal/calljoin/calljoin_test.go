package calljoin

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// halves returns the client and server observations of call i as the
// bare MCP SDK exports them from two processes: the client knows agent-A
// and no server, the server knows server S and names itself.
func halves(i int) (client, server event.Event) {
	trace := fmt.Sprintf("%032x", i+1)
	span := fmt.Sprintf("%016x", i+1)
	client = event.Event{EventID: "c" + fmt.Sprint(i), Tenant: "acme", Kind: event.KindMessage,
		Observer: event.ObserverClient, TraceID: trace, SpanID: span, Method: "tools/call",
		RequestID: fmt.Sprint(i), AgentID: "agent-A", Time: t0}
	client.CallID = event.CallIDOf(&client)
	server = event.Event{EventID: "s" + fmt.Sprint(i), Tenant: "acme", Kind: event.KindMessage,
		Observer: event.ObserverServer, TraceID: trace, SpanID: fmt.Sprintf("%016x", 1000+i), ParentSpanID: span,
		Method: "tools/call", RequestID: fmt.Sprint(i), AgentID: "server:fs-server", ServerName: "fs", ServerVersion: "1.2",
		Time: t0}
	server.CallID = event.CallIDOf(&server)
	return client, server
}

func TestHalvesShareCallID(t *testing.T) {
	c, s := halves(3)
	if c.CallID != s.CallID || c.CallID == c.EventID {
		t.Fatalf("client %q server %q: not one request-derived call id", c.CallID, s.CallID)
	}
	if !IsHalf(&c) || !IsHalf(&s) || NeedsAgent(&c) || !NeedsAgent(&s) {
		t.Fatal("IsHalf/NeedsAgent misclassify the halves")
	}
	whole := c
	whole.ServerName = "fs"
	dup := s
	dup.Tags = []string{event.TagDuplicate}
	joined := s
	joined.Tags = []string{TagUnpaired}
	own := c
	own.CallID = own.EventID
	for name, e := range map[string]event.Event{"complete": whole, "duplicate": dup, "joined already": joined, "own call id": own} {
		if IsHalf(&e) {
			t.Errorf("%s: IsHalf", name)
		}
	}
}

func checkJoined(t *testing.T, rel []Release, wantResult string) {
	t.Helper()
	if len(rel) != 2 {
		t.Fatalf("released %d observations, want 2: %+v", len(rel), rel)
	}
	if rel[0].Event.Observer != event.ObserverClient || rel[0].Event.HasTag(TagCallCounted) || !rel[1].Event.HasTag(TagCallCounted) {
		t.Errorf("want the client observation first, counting the call, the server's tagged %s: %v, %v", TagCallCounted, rel[0].Event.Tags, rel[1].Event.Tags)
	}
	for _, r := range rel {
		e := r.Event
		if e.AgentID != "agent-A" || e.ServerName != "fs" || e.ServerVersion != "1.2" || !e.HasTag(TagJoined) || r.Result != wantResult {
			t.Errorf("%s: agent %q server %q/%q tags %v result %s", e.EventID, e.AgentID, e.ServerName, e.ServerVersion, e.Tags, r.Result)
		}
		if e.Observer == event.ObserverServer && (!e.HasTag(TagJoinedAgent) || e.HasTag(TagJoinedServer)) {
			t.Errorf("server observation tags %v: want %s only", e.Tags, TagJoinedAgent)
		}
		if e.Observer == event.ObserverClient && (!e.HasTag(TagJoinedServer) || e.HasTag(TagJoinedAgent)) {
			t.Errorf("client observation tags %v: want %s only", e.Tags, TagJoinedServer)
		}
	}
}

func TestPairEitherOrder(t *testing.T) {
	for _, serverFirst := range []bool{false, true} {
		j := New(Config{Wait: 10 * time.Second})
		c, s := halves(1)
		first, second := Obs{Event: c, Offset: 5}, Obs{Event: s, Offset: 9}
		if serverFirst {
			first, second = Obs{Event: s, Offset: 5}, Obs{Event: c, Offset: 9}
		}
		if rel := j.Add(t0, first); len(rel) != 0 {
			t.Fatalf("released %v before its peer", rel)
		}
		if j.Held() != 1 || j.Committable(0, 6) != 5 {
			t.Fatalf("held %d, committable %d: want 1, 5", j.Held(), j.Committable(0, 6))
		}
		checkJoined(t, j.Add(t0.Add(time.Second), second), ResultPaired)
		if j.Held() != 0 || j.Committable(0, 10) != 10 {
			t.Fatalf("after pairing: held %d, committable %d", j.Held(), j.Committable(0, 10))
		}
		if c.AgentID != "agent-A" || c.ServerName != "" || len(c.Tags) != 0 {
			t.Fatal("the caller's event was modified")
		}
	}
}

func TestTimeoutWithInjectedClock(t *testing.T) {
	j := New(Config{Wait: 10 * time.Second})
	_, s := halves(1)
	j.Add(t0, Obs{Event: s, Offset: 1})
	if d := j.Next(); !d.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next deadline %v", d)
	}
	if rel := j.Expire(t0.Add(9 * time.Second)); len(rel) != 0 {
		t.Fatalf("released before the wait: %v", rel)
	}
	rel := j.Expire(t0.Add(10 * time.Second))
	if len(rel) != 1 || rel[0].Result != ResultUnpaired || rel[0].Event.AgentID != "server:fs-server" ||
		!rel[0].Event.HasTag(TagUnpaired) || rel[0].Event.HasTag(TagJoined) {
		t.Fatalf("released %+v", rel)
	}
	if j.Held() != 0 || !j.Next().IsZero() || j.Committable(0, 2) != 2 {
		t.Fatalf("held %d next %v committable %d", j.Held(), j.Next(), j.Committable(0, 2))
	}
	// The late client half adopts nothing it lacks? It learns the server
	// the released server observation named: it goes at once.
	c, _ := halves(1)
	late := j.Add(t0.Add(11*time.Second), Obs{Event: c, Offset: 2})
	if len(late) != 1 || late[0].Event.ServerName != "fs" || late[0].Result != ResultAdopted || j.Held() != 0 {
		t.Fatalf("late client half: %+v held %d", late, j.Held())
	}
}

// A client observation stored at once (notice): the server half that
// comes later adopts its agent without waiting; one that came first is
// released when the notice arrives.
func TestNoticeAdoption(t *testing.T) {
	j := New(Config{})
	c, s := halves(1)
	if rel := j.Add(t0, Obs{Event: Notice(&c), Stored: true}); len(rel) != 0 {
		t.Fatalf("a notice released %v", rel)
	}
	rel := j.Add(t0, Obs{Event: s, Offset: 3})
	if len(rel) != 1 || rel[0].Event.AgentID != "agent-A" || !rel[0].Event.HasTag(TagJoinedAgent) || !rel[0].Event.HasTag(TagCallCounted) || rel[0].Result != ResultAdopted {
		t.Fatalf("server half after the notice: %+v", rel)
	}
	c2, s2 := halves(2)
	j.Add(t0, Obs{Event: s2, Offset: 4})
	rel = j.Add(t0, Obs{Event: Notice(&c2), Stored: true, Offset: 5})
	if len(rel) != 1 || rel[0].Event.EventID != s2.EventID || rel[0].Event.AgentID != "agent-A" || !rel[0].Event.HasTag(TagCallCounted) || j.Held() != 0 {
		t.Fatalf("server half before the notice: %+v held %d", rel, j.Held())
	}
}

// A gateway and a server observation of one call (both fallback agents)
// wait together for the client; the duplicate of a held observation is
// not held twice.
func TestThreeObservationsAndDuplicates(t *testing.T) {
	j := New(Config{})
	c, s := halves(1)
	g := s
	g.EventID, g.Observer, g.AgentID, g.ServerName, g.ServerVersion = "g1", event.ObserverGateway, "gateway:gw", "", ""
	j.Add(t0, Obs{Event: g, Offset: 1})
	j.Add(t0, Obs{Event: s, Offset: 2})
	j.Add(t0, Obs{Event: s, Offset: 3}) // retry of the same observation
	if j.Held() != 2 {
		t.Fatalf("held %d, want 2", j.Held())
	}
	rel := j.Add(t0, Obs{Event: c, Offset: 4})
	if len(rel) != 3 {
		t.Fatalf("released %d, want 3", len(rel))
	}
	for _, r := range rel {
		if r.Event.AgentID != "agent-A" || r.Event.ServerName != "fs" {
			t.Errorf("%s: agent %q server %q", r.Event.EventID, r.Event.AgentID, r.Event.ServerName)
		}
	}
	if j.Committable(0, 5) != 5 {
		t.Fatalf("committable %d", j.Committable(0, 5))
	}
}

func TestCommittableAcrossPartitionsAndDrop(t *testing.T) {
	j := New(Config{})
	for i := 0; i < 4; i++ {
		_, s := halves(i)
		j.Add(t0, Obs{Event: s, Partition: int32(i % 2), Offset: int64(10 + i)})
	}
	if a, b := j.Committable(0, 20), j.Committable(1, 20); a != 10 || b != 11 {
		t.Fatalf("committable %d, %d: want 10, 11", a, b)
	}
	// Pair call 0 (partition 0, offset 10): partition 0 moves to 12.
	c, _ := halves(0)
	j.Add(t0, Obs{Event: c, Partition: 0, Offset: 14})
	if got := j.Committable(0, 15); got != 12 {
		t.Fatalf("partition 0 committable %d, want 12", got)
	}
	j.DropPartitions([]int32{1})
	if j.Held() != 1 || j.Committable(1, 20) != 20 {
		t.Fatalf("after drop: held %d committable %d", j.Held(), j.Committable(1, 20))
	}
	// Expire skips the dropped entries.
	if rel := j.Expire(t0.Add(time.Hour)); len(rel) != 1 || rel[0].Event.EventID != "s2" {
		t.Fatalf("expired %+v", rel)
	}
}

func TestBounds(t *testing.T) {
	j := New(Config{MaxHeld: 3, MaxRemembered: 4})
	var evicted []string
	for i := 0; i < 5; i++ {
		_, s := halves(i)
		for _, r := range j.Add(t0.Add(time.Duration(i)*time.Millisecond), Obs{Event: s, Offset: int64(i)}) {
			if r.Result != ResultEvicted || !r.Event.HasTag(TagUnpaired) {
				t.Fatalf("release %+v", r)
			}
			evicted = append(evicted, r.Event.EventID)
		}
		if j.Held() > 3 {
			t.Fatalf("held %d > max 3", j.Held())
		}
	}
	if !slices.Equal(evicted, []string{"s0", "s1"}) {
		t.Fatalf("evicted %v, want the oldest s0 s1", evicted)
	}
	if j.Committable(0, 5) != 2 {
		t.Fatalf("committable %d, want 2", j.Committable(0, 5))
	}
	for i := 0; i < 20; i++ {
		c, _ := halves(100 + i)
		j.Add(t0, Obs{Event: Notice(&c), Stored: true})
		if j.Remembered() > 4 {
			t.Fatalf("remembered %d > max 4", j.Remembered())
		}
	}
}

func TestPairsClientRule(t *testing.T) {
	var p Pairs
	p.Memory = time.Minute
	c, s := halves(1)
	if d := p.Decide(t0, &s); d != Divert {
		t.Fatalf("server half: %v, want Divert", d)
	}
	if d := p.Decide(t0, &c); d != Divert {
		t.Fatalf("client half without content of an agent not known yet: %v, want Divert", d)
	}
	withContent := c
	withContent.Arguments = `{"path":"/etc/passwd"}`
	if d := p.Decide(t0, &withContent); d != KeepAndNotify {
		t.Fatalf("client half with content of an agent not known yet: %v, want KeepAndNotify (not delayed, not reordered)", d)
	}
	unp := c
	unp.Tags = []string{TagUnpaired}
	p.Observe(t0, &unp)
	if d := p.Decide(t0.Add(30*time.Second), &c); d != KeepAndNotify {
		t.Fatalf("client half after an unpaired client half: %v, want KeepAndNotify", d)
	}
	if d := p.Decide(t0.Add(2*time.Minute), &c); d != Divert {
		t.Fatalf("client half after the memory: %v, want Divert", d)
	}
	joined := s
	joined.AgentID = "agent-A"
	joined.Tags = []string{TagJoined, TagJoinedAgent}
	p.Observe(t0.Add(3*time.Minute), &unp)
	p.Observe(t0.Add(3*time.Minute), &joined)
	if d := p.Decide(t0.Add(3*time.Minute), &c); d != Divert {
		t.Fatalf("client half after a pairing: %v, want Divert", d)
	}
	if d := p.Decide(t0.Add(3*time.Minute), &withContent); d != Divert {
		t.Fatalf("client half with content after a pairing: %v, want Divert", d)
	}
	p.Observe(t0.Add(4*time.Minute), &unp)
	if d := p.Decide(t0.Add(4*time.Minute), &c); d != KeepAndNotify {
		t.Fatalf("client half after a pairing, then an unpaired client half: %v, want KeepAndNotify", d)
	}
	other := c
	other.AgentID = "agent-B"
	if d := p.Decide(t0.Add(4*time.Minute), &other); d != Divert {
		t.Fatalf("another agent: %v, want Divert", d)
	}
	for i := 0; i < 3*maxPairAgents; i++ {
		x := joined
		x.AgentID = fmt.Sprint("a", i)
		p.Observe(t0, &x)
	}
	if p.Len() > maxPairAgents {
		t.Fatalf("pairs remembers %d agents > %d", p.Len(), maxPairAgents)
	}
	if whole := (event.Event{Kind: event.KindMessage, AgentID: "x"}); p.Decide(t0, &whole) != Keep {
		t.Fatal("not a half: want Keep")
	}
}
