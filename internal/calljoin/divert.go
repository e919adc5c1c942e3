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
	// KeepAndNotify: a client half of an agent with no recent paired call:
	// stored and detected now, and a notice of its identity goes to the
	// calls topic so that a later server half still adopts its agent.
	KeepAndNotify
)

// Defaults of the pairing memory.
const (
	DefaultPairMemory = time.Hour
	maxPairAgents     = 1 << 16
)

// Pairs is the ingest role's memory of which agents had a call joined
// recently, for the client-half rule: a client observation without server
// waits for its peer only when its agent's calls were paired within
// PairMemory (the agent talks to servers that export their own
// observations: the bare MCP SDK, fastmcp); an agent whose calls never
// pair (an OpenLLMetry client: no server peer) is not delayed. A client
// observation of the agent released unpaired forgets the agent again.
// Safe for concurrent use.
type Pairs struct {
	// Memory is how long a pairing counts; default DefaultPairMemory.
	Memory time.Duration

	mu       sync.Mutex
	cur, old map[string]time.Time // tenant/agent → last pairing seen
}

func pairKey(e *event.Event) string { return e.Tenant + "/" + e.AgentID }

// Observe learns from an event the join released: a joined observation
// with a real agent marks its agent as paired; a client half released
// unpaired (no server) clears it.
func (p *Pairs) Observe(now time.Time, e *event.Event) {
	switch {
	case e.HasTag(TagJoined) && e.AgentID != "" && !event.IsObserverAgent(e.AgentID):
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cur == nil {
			p.cur, p.old = map[string]time.Time{}, map[string]time.Time{}
		}
		k := pairKey(e)
		if _, ok := p.cur[k]; !ok && len(p.cur) >= maxPairAgents/2 {
			clear(p.old)
			p.cur, p.old = p.old, p.cur
		}
		p.cur[k] = now
	case e.HasTag(TagUnpaired) && e.ServerName == "" && !event.IsObserverAgent(e.AgentID):
		p.mu.Lock()
		defer p.mu.Unlock()
		k := pairKey(e)
		delete(p.cur, k)
		delete(p.old, k)
	}
}

// Paired reports whether e's agent had a call paired within Memory.
func (p *Pairs) Paired(now time.Time, e *event.Event) bool {
	mem := p.Memory
	if mem <= 0 {
		mem = DefaultPairMemory
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := pairKey(e)
	t, ok := p.cur[k]
	if !ok {
		t, ok = p.old[k]
	}
	return ok && now.Sub(t) <= mem
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
	if NeedsAgent(e) || p.Paired(now, e) {
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
