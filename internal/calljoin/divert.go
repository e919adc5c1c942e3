package calljoin

import (
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/recent"
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
	// client half was released unpaired), or with content of an agent not
	// known (Pairs): stored and detected now, and a notice of its identity
	// goes to the calls topic so that a later server half still adopts its
	// agent.
	KeepAndNotify
)

// Defaults of the pairing memory.
const (
	DefaultPairMemory = time.Hour
	maxPairAgents     = 1 << 16
)

// Pairs is the ingest role's memory of whether an agent's calls pair, for
// the client-half rule. A client observation without server waits for its
// peer when its agent's calls paired within Memory; it is stored at once
// (with a notice) when its last client half came back unpaired within
// Memory (an agent whose servers export nothing). For an agent the memory
// does not know, it waits only if it carries no content: the bare MCP
// SDK's client observations (no content, a server that exports its side)
// are then completed from the first call, while a client that sends
// content without a server peer (OpenLLMetry Python) is neither delayed
// nor reordered — holding some of an agent's content-bearing observations
// and not others would let a later one be detected before an earlier one,
// and a sequence (sensitive read, then egress) would miss its order.
// Safe for concurrent use.
type Pairs struct {
	// Memory is how long an outcome counts; default DefaultPairMemory.
	Memory time.Duration

	mu    sync.Mutex
	known *recent.Map[string, pairing] // tenant/agent → its last outcome
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
	if p.known == nil {
		p.known = recent.New[string, pairing](maxPairAgents)
	}
	p.known.Put(k, v)
}

// outcome reports what the memory knows of e's agent within Memory:
// known, and whether its calls pair.
func (p *Pairs) outcome(now time.Time, e *event.Event) (known, paired bool) {
	mem := p.Memory
	if mem <= 0 {
		mem = DefaultPairMemory
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known == nil {
		return false, false
	}
	v, ok := p.known.Get(pairKey(e))
	if !ok || now.Sub(v.at) > mem {
		return false, false
	}
	return true, v.paired
}

// Len is the number of agents remembered.
func (p *Pairs) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known == nil {
		return 0
	}
	return p.known.Len()
}

// Decide is what ingest does with e (after Observe saw it).
func (p *Pairs) Decide(now time.Time, e *event.Event) Decision {
	if !IsHalf(e) {
		return Keep
	}
	if NeedsAgent(e) {
		return Divert
	}
	known, paired := p.outcome(now, e)
	if paired || !known && !hasContent(e) {
		return Divert
	}
	return KeepAndNotify
}

// hasContent reports whether e carries what content rules read.
func hasContent(e *event.Event) bool {
	return e.Arguments != "" || e.Result != "" || e.ToolDescription != ""
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
