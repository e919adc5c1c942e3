// Package enrich is the stateful identity step of the analyzer's ingest
// role (docs/event.md, "Identity"): it remembers, per agent, the
// server each connection talks to and fills it into the later calls that do
// not name it; it gives events with neither an MCP session id nor a
// conversation id a derived session (agent + server + idle gap); and it
// never lets an event leave with an empty agent.
//
// The state is per agent, as the events topic is keyed (tenant + agent), so
// the consumer that owns an agent's partition owns its state. It is kept in
// ClickHouse (enrich_servers, enrich_sessions: schema/0018, 0019) so that it
// survives restarts and moves between instances: Flush writes what changed,
// Forget drops the cache when partitions go, and an agent's rows are loaded
// on the first batch that has it. See docs/analyzer.md "Enrichment in the
// analyzer" for the rules.
package enrich

import (
	"context"
	"sort"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Tags added to the events whose fields were inferred.
const (
	TagServer        = "enriched:server"         // server_name (and server_version) filled from the connection's memory
	TagServerVersion = "enriched:server_version" // only server_version filled
	TagSession       = "enriched:session"        // session_key is a derived session
	TagAgent         = "enriched:agent"          // agent_id was empty: user@client or UnknownAgent
)

// UnknownAgent is the agent of an event that names no agent, user or
// client. Such events get no server memory and no derived session (they
// are not keyed by agent on the events topic, so no single consumer owns
// their state).
const UnknownAgent = "unknown-agent"

// Options are the dependencies of an Enricher.
type Options struct {
	// Conn is the ClickHouse connection (the store's pool). Nil keeps the
	// state in memory only: it is lost on restart (tests, tools).
	Conn driver.Conn
	// Database holds enrich_servers and enrich_sessions.
	Database string
	// Registerer receives the metrics; nil = not registered.
	Registerer prometheus.Registerer
}

// Stats are the Enricher's counters (also exported as metrics).
type Stats struct {
	Events             uint64 // events seen by Enrich
	FilledServer       uint64 // server_name filled
	FilledVersion      uint64 // server_version filled (with or without the name)
	FilledSession      uint64 // session_key set to a derived session
	FilledAgent        uint64 // agent_id filled
	Ambiguous          uint64 // server left empty: the connection (or agent) had several servers
	CallCounted        uint64 // later observations of a call tagged call_already_counted
	Loads              uint64 // load queries (one per table per batch with new agents)
	AgentsLoaded       uint64 // agents looked up in ClickHouse
	LoadErrors         uint64
	Flushes            uint64 // successful flushes that wrote rows
	RowsWritten        uint64
	FlushErrors        uint64
	Evictions          uint64 // agents dropped from memory (MaxAgents)
	Agents             int    // agents in memory now
	PendingServerRows  int    // changes not yet flushed
	PendingSessionRows int
}

// Enricher fills server identity, derived sessions and agents into the
// events of one consumer. Its methods are safe for concurrent use (they
// are serialised), so Flush may run in the goroutine that stores a batch
// while Enrich runs on the next one.
type Enricher struct {
	cfg   Config
	gap   int64
	store *chState // nil: memory only
	m     *metrics

	mu        sync.Mutex
	agents    map[agentKey]*agentState
	head      *agentState // LRU list
	tail      *agentState
	gen       uint64 // Enrich call generation
	forgotten uint64 // Forget generation
	dirtySrv  []*serverEntry
	dirtySess []*session
	calls     calls // the observation that counts each recent call (calls.go)
	stats     Stats

	// Scratch reused across calls (under mu).
	refs     []*agentState
	deferred []int
	missing  []agentKey
	arena    []string // tags slices handed to events (never rewritten)
	fallback struct{ user, client, agent string }

	flushMu sync.Mutex
}

// New returns an Enricher; cfg's zero fields take their defaults.
func New(cfg Config, opt Options) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	x := &Enricher{cfg: cfg, gap: int64(cfg.SessionGap), m: newMetrics(opt.Registerer), agents: map[agentKey]*agentState{}}
	if opt.Conn != nil {
		x.store = &chState{conn: opt.Conn, servers: "`" + opt.Database + "`.`enrich_servers`", sessions: "`" + opt.Database + "`.`enrich_sessions`"}
	}
	return x, nil
}

// Stats returns a snapshot of the counters.
func (x *Enricher) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.stats
	s.Agents = len(x.agents)
	s.PendingServerRows, s.PendingSessionRows = len(x.dirtySrv), len(x.dirtySess)
	return s
}

// Forget drops the in-memory state, changes not yet flushed included. The
// analyzer calls it when partitions are revoked or lost, at a point where
// no Flush is running: the next owner of an agent (this instance or
// another) loads it from ClickHouse, and the batches whose changes were
// dropped were not committed, so they are replayed.
func (x *Enricher) Forget() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.agents = map[agentKey]*agentState{}
	x.head, x.tail = nil, nil
	x.calls.reset()
	clear(x.dirtySrv)
	clear(x.dirtySess)
	x.dirtySrv, x.dirtySess = x.dirtySrv[:0], x.dirtySess[:0]
	clear(x.refs)
	x.forgotten++
	x.m.agents.Set(0)
}

// Enrich fills the events of one decoded batch in place, in order of the
// batch; call it on every batch, before detection and insert:
//
//   - agent_id: when empty, user@client, else UnknownAgent (tag enriched:agent);
//   - server_name/server_version: when empty, from what the event's
//     connection (or agent) is known to talk to (tag enriched:server or
//     enriched:server_version);
//   - session_key: when the event has neither a session id nor a
//     conversation id, the derived session of its agent and server (tag
//     enriched:session);
//   - a later observation of a call its agent's earlier observation counts
//     is tagged call_already_counted (calls.go).
//
// The agents of the batch that are not in memory are loaded first, in one
// query per table. Enrich fails only when that load fails; then no event
// has been changed and the call can be retried.
func (x *Enricher) Enrich(ctx context.Context, events []event.Event) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cap(x.refs) < len(events) {
		x.refs = make([]*agentState, len(events))
	}
	refs := x.refs[:len(events)]
	defer clear(refs)
	if err := x.resolveAgents(ctx, events, refs); err != nil {
		return err
	}
	x.gen++
	var c counts
	c.events = len(events)

	// Pass 1: learn the servers the batch names (all of them first, so
	// that the answer for an event depends on event times, not on the
	// order of the batch).
	for i := range events {
		a := refs[i]
		if a == nil {
			continue
		}
		e := &events[i]
		t := eventTime(e)
		if t <= 0 {
			continue
		}
		if a.gen != x.gen {
			a.gen, a.lastT, a.unsorted = x.gen, t, false
		} else if t < a.lastT {
			a.unsorted = true
		} else {
			a.lastT = t
		}
		if e.ServerName != "" && !e.HasTag(TagServer) && !e.HasTag(event.TagJoinedServer) && !e.HasTag(event.TagJoinedAgent) {
			x.learn(a, e, t)
		}
	}

	// Pass 2: fill.
	deferred := x.deferred[:0]
	for i := range events {
		e := &events[i]
		var tags tagSet
		if e.AgentID == "" {
			e.AgentID = x.fallbackAgent(e)
			tags |= tagAgent
			c.agent++
		}
		a := refs[i]
		if a == nil {
			x.addTags(e, tags)
			continue
		}
		if x.calls.counted(a, e) {
			tags |= tagCounted
			c.counted++
		}
		t := eventTime(e)
		if t > 0 {
			tags |= x.fillServer(a, e, t, &c)
			if e.SessionID == "" && e.ConversationID == "" {
				if a.unsorted && a.gen == x.gen {
					deferred = append(deferred, i)
				} else {
					x.setSession(a, e, t)
					tags |= tagSession
					c.session++
				}
			}
		}
		x.addTags(e, tags)
	}
	if len(deferred) > 0 {
		// The agents whose events came out of time order: place their
		// sessions in event-time order (stable: arrival breaks ties).
		sort.SliceStable(deferred, func(i, j int) bool {
			return events[deferred[i]].Time.Before(events[deferred[j]].Time)
		})
		for _, i := range deferred {
			e := &events[i]
			x.setSession(refs[i], e, eventTime(e))
			x.addTags(e, tagSession)
			c.session++
		}
	}
	x.deferred = deferred[:0]
	x.trim()
	x.count(c)
	return nil
}

// eventTime is the event time in unix ns; 0 when unknown (zero or before
// 1970), which skips server memory and derived sessions for the event.
func eventTime(e *event.Event) int64 {
	if e.Time.IsZero() {
		return 0
	}
	t := e.Time.UnixNano()
	if t <= 0 {
		return 0
	}
	return t
}

// stateKey is the agent an event's state belongs to; ok is false when the
// event names no agent, user or client.
func (x *Enricher) stateKey(e *event.Event) (agentKey, bool) {
	if e.AgentID != "" {
		return agentKey{e.Tenant, e.AgentID}, true
	}
	if e.UserID != "" || e.ClientName != "" {
		return agentKey{e.Tenant, x.userClient(e)}, true
	}
	return agentKey{}, false
}

// userClient is user@client, the agent of events that name none (the same
// identity the collector keys them by). The last value is memoised.
func (x *Enricher) userClient(e *event.Event) string {
	f := &x.fallback
	if f.agent == "" || f.user != e.UserID || f.client != e.ClientName {
		f.user, f.client, f.agent = e.UserID, e.ClientName, e.UserID+"@"+e.ClientName
	}
	return f.agent
}

func (x *Enricher) fallbackAgent(e *event.Event) string {
	if e.UserID != "" || e.ClientName != "" {
		return x.userClient(e)
	}
	return UnknownAgent
}

// resolveAgents sets refs[i] to the state of event i's agent (nil for
// events without one), loading the agents not in memory first.
func (x *Enricher) resolveAgents(ctx context.Context, events []event.Event, refs []*agentState) error {
	var last *agentState
	missing := x.missing[:0]
	defer func() { clear(missing); x.missing = missing[:0] }()
	var seen map[agentKey]struct{}
	for i := range events {
		e := &events[i]
		k, ok := x.stateKey(e)
		if !ok {
			continue
		}
		if last != nil && last.key == k {
			refs[i] = last
			continue
		}
		a := x.agents[k]
		if a == nil {
			if seen == nil {
				seen = map[agentKey]struct{}{}
			}
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				missing = append(missing, k)
			}
			last = nil
			continue
		}
		x.touch(a)
		refs[i], last = a, a
	}
	if len(missing) == 0 {
		return nil
	}
	loaded := make(map[agentKey]*agentState, len(missing))
	for _, k := range missing {
		loaded[k] = newAgentState(k)
	}
	if x.store != nil {
		x.stats.Loads += 2
		x.stats.AgentsLoaded += uint64(len(missing))
		x.m.loads.Add(2)
		x.m.agentsLoaded.Add(float64(len(missing)))
		if err := x.store.load(ctx, missing, loaded, x); err != nil {
			x.stats.LoadErrors++
			x.m.loadErrors.Inc()
			clear(refs)
			return err
		}
	}
	for _, k := range missing {
		a := loaded[k]
		x.agents[k] = a
		x.pushFront(a)
	}
	last = nil
	for i := range events {
		if refs[i] != nil {
			continue
		}
		k, ok := x.stateKey(&events[i])
		if !ok {
			continue
		}
		if last == nil || last.key != k {
			last = x.agents[k]
		}
		refs[i] = last
	}
	return nil
}

// levels returns the connection keys of e, most specific first (see the
// package documentation of the connection rule).
func levels(e *event.Event, buf *[3]connKey) []connKey {
	n := 0
	if e.SessionID != "" {
		buf[n] = connKey{kind: connSession, target: e.SessionID}
		n++
	}
	if e.ServerAddress != "" {
		buf[n] = connKey{kind: connEndpoint, client: e.ClientName, target: e.ServerAddress, port: e.ServerPort}
		n++
	} else if e.Transport != "" {
		buf[n] = connKey{kind: connTransport, client: e.ClientName, target: e.Transport}
		n++
	}
	buf[n] = connKey{kind: connAgent}
	n++
	return buf[:n]
}

// learn records that e's connection keys talk to e's server.
func (x *Enricher) learn(a *agentState, e *event.Event, t int64) {
	var buf [3]connKey
	for _, k := range levels(e, &buf) {
		c := a.conns[k]
		if c == nil {
			c = x.newConn(a, k)
		}
		x.learnConn(a, c, e.ServerName, e.ServerVersion, t, t)
	}
}

func (x *Enricher) newConn(a *agentState, k connKey) *conn {
	if k.kind != connAgent && len(a.conns) > maxConnsPerAgent {
		var old *conn
		for _, c := range a.conns {
			if c.key.kind != connAgent && (old == nil || c.lastNs < old.lastNs) {
				old = c
			}
		}
		delete(a.conns, old.key) // a dirty entry of it is still flushed
	}
	c := &conn{key: k}
	a.conns[k] = c
	return c
}

// learnConn merges one observation (or loaded row) of (name, version) seen
// from first to last into c.
func (x *Enricher) learnConn(a *agentState, c *conn, name, version string, first, last int64) *serverEntry {
	c.lastNs = max(c.lastNs, last)
	for _, en := range c.entries {
		if en.name != name || en.version != version {
			continue
		}
		changed := false
		if first < en.firstNs {
			en.firstNs, changed = first, true
		}
		if last > en.lastNs {
			en.lastNs = last
			changed = changed || en.lastNs-en.writtenLastNs >= lastSeenStep
		}
		if changed {
			x.markServer(en)
		}
		return en
	}
	en := &serverEntry{agent: a, conn: c, name: name, version: version, firstNs: first, lastNs: last}
	c.entries = append(c.entries, en)
	if len(c.entries) > maxEntriesPerConn {
		c.dropEntry()
	}
	x.markServer(en)
	return en
}

// dropEntry drops the least recently seen older version of a name, else
// the least recently seen entry (and the key turns ambiguous).
func (c *conn) dropEntry() {
	names := map[string]int{}
	for _, en := range c.entries {
		names[en.name]++
	}
	drop := -1
	for i, en := range c.entries {
		if names[en.name] > 1 && (drop < 0 || en.lastNs < c.entries[drop].lastNs) {
			drop = i
		}
	}
	if drop < 0 {
		c.lossy = true
		drop = 0
		for i, en := range c.entries {
			if en.lastNs < c.entries[drop].lastNs {
				drop = i
			}
		}
	}
	c.entries = append(c.entries[:drop], c.entries[drop+1:]...)
}

func (x *Enricher) markServer(en *serverEntry) {
	if !en.dirty {
		en.dirty = true
		en.agent.nDirty++
		x.dirtySrv = append(x.dirtySrv, en)
	}
}

func (x *Enricher) markSession(s *session) {
	if !s.dirty {
		s.dirty = true
		s.agent.nDirty++
		x.dirtySess = append(x.dirtySess, s)
	}
}

// stretch makes s hold t.
func (x *Enricher) stretch(s *session, t int64) {
	if t < s.firstNs {
		s.firstNs = t
		x.markSession(s)
	} else if t > s.lastNs {
		s.lastNs = t
		x.markSession(s)
	}
}

// fillServer fills e's empty server name (and version) from the first
// level of its connection that knows a server at e's time, or only the
// version when e names its server.
func (x *Enricher) fillServer(a *agentState, e *event.Event, t int64, cnt *counts) tagSet {
	if e.ServerName != "" && e.ServerVersion != "" {
		return 0
	}
	var buf [3]connKey
	ls := levels(e, &buf)
	if e.ServerName != "" {
		for _, k := range ls {
			if c := a.conns[k]; c != nil {
				if v := c.versionAt(e.ServerName, t); v != "" {
					e.ServerVersion = v
					cnt.version++
					return tagVersion
				}
			}
		}
		return 0
	}
	for _, k := range ls {
		c := a.conns[k]
		if c == nil {
			continue
		}
		name, version, amb := c.at(t)
		if amb {
			cnt.ambiguous++
			return 0
		}
		if name == "" {
			continue
		}
		e.ServerName = name
		cnt.server++
		if e.ServerVersion == "" && version != "" {
			e.ServerVersion = version
			cnt.version++
		}
		return tagServer
	}
	return 0
}

// setSession sets e's session key to its derived session.
func (x *Enricher) setSession(a *agentState, e *event.Event, t int64) {
	server := e.ServerName
	if e.HasTag(event.TagJoinedServer) {
		// The server came from the call join, not from this observer: the
		// observation keeps the session of what its observer saw, so the
		// client observations of one connection stay one session whether
		// or not the join completed them (an agent's first export is
		// stored before its calls are known to pair: docs/analyzer.md).
		server = ""
	}
	ss := a.sessions[server]
	if ss == nil {
		if len(a.sessions) >= maxServersPerAgent {
			var oldName string
			var old *serverSessions
			for n, s := range a.sessions {
				if old == nil || s.lastNs < old.lastNs {
					oldName, old = n, s
				}
			}
			delete(a.sessions, oldName)
		}
		ss = &serverSessions{}
		a.sessions[server] = ss
	}
	e.SessionKey = ss.place(a, server, t, x.gap, x.cfg.KeepSessions, x).key
}

// tagSet is the tags to add to one event.
type tagSet uint8

const (
	tagAgent tagSet = 1 << iota
	tagServer
	tagVersion
	tagSession
	tagCounted
)

var tagNames = [...]struct {
	bit  tagSet
	name string
}{{tagAgent, TagAgent}, {tagServer, TagServer}, {tagVersion, TagServerVersion}, {tagSession, TagSession}, {tagCounted, TagCallCounted}}

// addTags adds the tags of ts to e. The new Tags slice is cut from an
// arena shared by the batch (one allocation per ~1000 tags rather than
// one per event); the arena is only appended to, never rewritten, so the
// slices handed out stay valid, and each has no spare capacity, so a later
// append by anyone copies.
func (x *Enricher) addTags(e *event.Event, ts tagSet) {
	if ts == 0 {
		return
	}
	n := len(e.Tags)
	for _, t := range tagNames {
		if ts&t.bit != 0 && e.HasTag(t.name) {
			ts &^= t.bit
		}
		if ts&t.bit != 0 {
			n++
		}
	}
	if n == len(e.Tags) {
		return
	}
	if len(x.arena)+n > cap(x.arena) {
		x.arena = make([]string, 0, max(1024, n))
	}
	start := len(x.arena)
	x.arena = append(x.arena, e.Tags...)
	for _, t := range tagNames {
		if ts&t.bit != 0 {
			x.arena = append(x.arena, t.name)
		}
	}
	e.Tags = x.arena[start:len(x.arena):len(x.arena)]
}

// LRU of agents.

func (x *Enricher) pushFront(a *agentState) {
	a.prev, a.next = nil, x.head
	if x.head != nil {
		x.head.prev = a
	}
	x.head = a
	if x.tail == nil {
		x.tail = a
	}
}

func (x *Enricher) unlink(a *agentState) {
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		x.head = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else {
		x.tail = a.prev
	}
	a.prev, a.next = nil, nil
}

func (x *Enricher) touch(a *agentState) {
	if x.head != a {
		x.unlink(a)
		x.pushFront(a)
	}
}

// trim drops the least recently used agents beyond MaxAgents; agents with
// changes not yet flushed stay until a Flush has written them.
func (x *Enricher) trim() {
	for a := x.tail; a != nil && len(x.agents) > x.cfg.MaxAgents; {
		prev := a.prev
		if a.nDirty == 0 {
			x.unlink(a)
			delete(x.agents, a.key)
			x.stats.Evictions++
			x.m.evictions.Inc()
		}
		a = prev
	}
	x.m.agents.Set(float64(len(x.agents)))
}

// counts are one Enrich call's counters, added to Stats and the metrics
// once per call.
type counts struct {
	events, server, version, session, agent, ambiguous, counted int
}

func (x *Enricher) count(c counts) {
	s := &x.stats
	s.Events += uint64(c.events)
	s.FilledServer += uint64(c.server)
	s.FilledVersion += uint64(c.version)
	s.FilledSession += uint64(c.session)
	s.FilledAgent += uint64(c.agent)
	s.Ambiguous += uint64(c.ambiguous)
	s.CallCounted += uint64(c.counted)
	x.m.filled.server.Add(float64(c.server))
	x.m.filled.version.Add(float64(c.version))
	x.m.filled.session.Add(float64(c.session))
	x.m.filled.agent.Add(float64(c.agent))
	x.m.ambiguous.Add(float64(c.ambiguous))
}
