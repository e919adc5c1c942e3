package calljoin

import (
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Decision is what the ingest role does with an event.
type Decision int

const (
	// Keep: not a half; stored and detected now.
	Keep Decision = iota
	// Divert: a half that waits for its peer on the calls topic; neither
	// stored nor detected until the join releases it.
	Divert
	// KeepAndNotify: a client half of an agent known not to pair (its last
	// client half was released unpaired): stored and detected now, and a
	// notice of its identity goes to the calls topic so that a later server
	// half still adopts its agent.
	KeepAndNotify
)

// Defaults of the pairing memory.
const (
	DefaultPairMemory = time.Hour
	maxPairAgents     = 1 << 16
)

// Pairs is the ingest role's memory of whether an agent's calls pair, for
// the client-half rule: a client observation without server waits for its
// peer unless its agent is known, within Memory, not to pair — its last
// client half came back from the join unpaired (an OpenLLMetry client: no
// server exports its side), and no call of it paired since. An agent the
// memory does not know waits too: the first calls of an agent are when its
// identity is learnt, so an agent that never pairs costs one wait
// (call_join_wait) per Memory, and the bare MCP SDK's client observations
// are completed from its first call on. Safe for concurrent use.
type Pairs struct {
	// Memory is how long an outcome counts; default DefaultPairMemory.
	Memory time.Duration

	mu       sync.Mutex
	cur, old map[string]pairing // tenant/agent → its last outcome
}

// pairing is an agent's last outcome and when it was seen.
type pairing struct {
	at     time.Time
	paired bool
}

func pairKey(e *event.Event) string { return e.Tenant + "/" + e.AgentID }

// Observe learns from an event the join released: a joined observation
// with a real agent says its agent's calls pair; a client half released
// unpaired (no server) says they do not.
func (p *Pairs) Observe(now time.Time, e *event.Event) {
	switch {
	case e.HasTag(TagJoined) && e.AgentID != "" && !event.IsObserverAgent(e.AgentID):
		p.set(pairKey(e), pairing{now, true})
	case e.HasTag(TagUnpaired) && e.ServerName == "" && !event.IsObserverAgent(e.AgentID):
		p.set(pairKey(e), pairing{now, false})
	}
}

func (p *Pairs) set(k string, v pairing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		p.cur, p.old = map[string]pairing{}, map[string]pairing{}
	}
	if _, ok := p.cur[k]; !ok && len(p.cur) >= maxPairAgents/2 {
		clear(p.old)
		p.cur, p.old = p.old, p.cur
	}
	delete(p.old, k)
	p.cur[k] = v
}

// NeverPairs reports whether e's agent is known, within Memory, not to
// pair: its last client half was released unpaired.
func (p *Pairs) NeverPairs(now time.Time, e *event.Event) bool {
	mem := p.Memory
	if mem <= 0 {
		mem = DefaultPairMemory
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := pairKey(e)
	v, ok := p.cur[k]
	if !ok {
		v, ok = p.old[k]
	}
	return ok && !v.paired && now.Sub(v.at) <= mem
}

// Len is the number of agents remembered.
func (p *Pairs) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cur) + len(p.old)
}

// Decide is what ingest does with e (after Observe saw it).
func (p *Pairs) Decide(now time.Time, e *event.Event) Decision {
	if !IsHalf(e) {
		return Keep
	}
	if NeedsAgent(e) || !p.NeverPairs(now, e) {
		return Divert
	}
	return KeepAndNotify
}

// Notice is the part of a client observation the join remembers: its
// call, agent and server (a small value on the calls topic).
func Notice(e *event.Event) event.Event {
	return event.Event{EventID: e.EventID, Tenant: e.Tenant, Kind: e.Kind, Time: e.Time,
		Source: e.Source, Observer: e.Observer, TraceID: e.TraceID, SpanID: e.SpanID,
		Method: e.Method, RequestID: e.RequestID, CallID: e.CallID, AgentID: e.AgentID,
		ServerName: e.ServerName, ServerVersion: e.ServerVersion}
}

// CallsKey is the calls topic's record key of e: tenant/call id.
func CallsKey(e *event.Event) string { return e.Tenant + "/" + e.CallID }
