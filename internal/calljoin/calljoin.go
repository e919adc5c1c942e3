// Package calljoin joins the observations of one MCP call that reach the
// analyzer separately (issue #12, "one call is one call"): the client
// observation, exported by the agent's process, knows the agent but not the
// server; the server (or gateway) observation, exported by the server's
// process, knows the server but names only a marked fallback agent
// ("server:…", event.IsObserverAgent). The collector keys the events topic by
// agent, so the two land on different partitions and would be stored and
// counted as two calls of two agents.
//
// The ingest role diverts such halves to the calls topic, keyed by
// tenant/call_id; the join loop (internal/analyzer, join.go) feeds them to
// a Joiner, which holds them by (tenant, call id) until their peer arrives
// or Wait passes, completes their identity from each other and hands them
// back to be produced to the events topic, tagged so they are never
// diverted again. This package is the pure logic: no I/O, the clock is an
// argument (docs/analyzer.md, "Call join").
package calljoin

import (
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/recent"
)

// Tags the join adds to the observations it releases.
const (
	// TagJoined marks an observation whose identity is complete after the
	// join (agent and server), or that took a field from a peer.
	TagJoined = "call_joined"
	// TagUnpaired marks an observation released after waiting Wait for a
	// peer that did not come (it keeps its fallback agent or empty server).
	TagUnpaired = "call_unpaired"
	// TagJoinedAgent: agent_id was a fallback and was taken from a peer.
	TagJoinedAgent = event.TagJoinedAgent
	// TagJoinedServer: server_name/server_version were empty and were
	// taken from a peer (event.TagJoinedServer).
	TagJoinedServer = event.TagJoinedServer
	// TagCallCounted is event.TagCallCounted: the calls rollup skips the
	// observation because another observation of the call counts it. The
	// join sets it itself on every observation it releases but one per
	// call (docs/analyzer.md, "Call join"), so the count does not depend on
	// the ingest role's in-memory call memory: a release produced again
	// after a crash, read by an instance that never saw the peer, is
	// tagged as the first one was.
	TagCallCounted = event.TagCallCounted
)

// Results of released observations (the metric's label).
const (
	// ResultPaired: released with the peer it waited for (both held).
	ResultPaired = "paired"
	// ResultAdopted: completed from a peer the join remembers (a client
	// observation stored at once, or a peer released earlier).
	ResultAdopted = "adopted"
	// ResultUnpaired: no peer within Wait.
	ResultUnpaired = "unpaired"
	// ResultEvicted: released before Wait because MaxHeld was reached.
	ResultEvicted = "evicted"
)

// Results lists every result (metric label values).
var Results = []string{ResultPaired, ResultAdopted, ResultUnpaired, ResultEvicted}

// IsHalf reports whether e is an observation the join can complete: a
// message whose call id is shared with its other observations, that is not
// a duplicate, has not been through the join already, and lacks its agent
// (a fallback agent) or its server name.
func IsHalf(e *event.Event) bool {
	return e.Kind == event.KindMessage && event.CallIDFromRequest(e) &&
		!e.HasTag(event.TagDuplicate) && !e.HasTag(TagJoined) && !e.HasTag(TagUnpaired) &&
		(e.ServerName == "" || event.IsObserverAgent(e.AgentID))
}

// NeedsAgent reports whether a half lacks its agent (a server or gateway
// observation): it always waits for its peer.
func NeedsAgent(e *event.Event) bool { return event.IsObserverAgent(e.AgentID) }

// Defaults of Config.
const (
	DefaultWait          = 10 * time.Second
	DefaultMaxHeld       = 100_000
	DefaultMaxRemembered = 1 << 18
)

// Config bounds a Joiner.
type Config struct {
	// Wait is how long a held observation waits for its peer.
	Wait time.Duration
	// MaxHeld bounds the observations held; at the bound the oldest call
	// is released unpaired (ResultEvicted).
	MaxHeld int
	// MaxRemembered bounds the calls whose identity is remembered after
	// their release (or from a stored client observation): the most recent
	// MaxRemembered/2 to MaxRemembered of them.
	MaxRemembered int
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Wait <= 0 {
		c.Wait = DefaultWait
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = DefaultMaxHeld
	}
	if c.MaxRemembered < 2 {
		c.MaxRemembered = DefaultMaxRemembered
	}
	return c
}

// Key is a call: its tenant and call id.
type Key struct{ Tenant, CallID string }

// KeyOf is e's call.
func KeyOf(e *event.Event) Key { return Key{e.Tenant, e.CallID} }

// Obs is one observation read from the calls topic, with where it was.
type Obs struct {
	Event     event.Event
	Partition int32
	Offset    int64
	// Stored marks a notice: the observation is stored already (a client
	// observation of an agent that had no paired call recently, see
	// docs/analyzer.md); only its identity is remembered, nothing is held
	// or released for it.
	Stored bool
}

// Release is an observation to produce to the events topic.
type Release struct {
	Event  event.Event
	Result string
}

// ident is what the join knows of a call's identity.
type ident struct {
	agent, server, version string
}

func (id ident) complete() bool { return id.agent != "" && id.server != "" }

// add merges what e says into id.
func (id *ident) add(e *event.Event) {
	if id.agent == "" && e.AgentID != "" && !event.IsObserverAgent(e.AgentID) {
		id.agent = e.AgentID
	}
	if id.server == "" && e.ServerName != "" {
		id.server, id.version = e.ServerName, e.ServerVersion
	}
}

// merge merges another ident into id.
func (id *ident) merge(o ident) {
	if id.agent == "" {
		id.agent = o.agent
	}
	if id.server == "" {
		id.server, id.version = o.server, o.version
	}
}

// apply fills e's missing identity from id and tags it; it reports whether
// a field was filled.
func (id ident) apply(e *event.Event) bool {
	filled := false
	if id.agent != "" && event.IsObserverAgent(e.AgentID) {
		e.AgentID = id.agent
		e.AddTag(TagJoinedAgent)
		filled = true
	}
	if id.server != "" && e.ServerName == "" {
		e.ServerName, e.ServerVersion = id.server, id.version
		e.AddTag(TagJoinedServer)
		filled = true
	}
	return filled
}

// entry is a call with held observations.
type entry struct {
	key      Key
	obs      []Obs
	deadline time.Time
	seq      uint64
}

type queued struct {
	key      Key
	seq      uint64
	deadline time.Time
}

// Joiner holds the halves of the calls of the partitions it is given.
// It is not safe for concurrent use.
type Joiner struct {
	cfg   Config
	held  map[Key]*entry
	nHeld int
	queue []queued // by deadline (deadlines are now+Wait: FIFO)
	seq   uint64
	known *recent.Map[Key, ident] // identities of calls released or stored
	parts map[int32]*offsets
}

// New returns an empty Joiner.
func New(c Config) *Joiner {
	c = c.WithDefaults()
	return &Joiner{cfg: c, held: map[Key]*entry{}, parts: map[int32]*offsets{},
		known: recent.New[Key, ident](c.MaxRemembered)}
}

// Held is the number of observations held.
func (j *Joiner) Held() int { return j.nHeld }

// Remembered is the number of calls whose identity is remembered.
func (j *Joiner) Remembered() int { return j.known.Len() }

// Next is the earliest deadline of a held observation (zero when none).
func (j *Joiner) Next() time.Time {
	for len(j.queue) > 0 {
		q := j.queue[0]
		if en := j.held[q.key]; en != nil && en.seq == q.seq {
			return q.deadline
		}
		j.queue = j.queue[1:]
	}
	return time.Time{}
}

func (j *Joiner) recall(k Key) (ident, bool) { return j.known.Get(k) }

func (j *Joiner) remember(k Key, id ident) {
	if old, ok := j.known.Get(k); ok {
		id.merge(old)
	}
	j.known.Put(k, id)
}

// Add takes one observation read at (o.Partition, o.Offset) and returns
// what can be released now: the observation itself when a remembered peer
// completes it, or every held observation of its call once the call's
// identity is complete. Otherwise it is held until its call completes or
// Expire releases it.
func (j *Joiner) Add(now time.Time, o Obs) []Release {
	k := KeyOf(&o.Event)
	if o.Stored {
		var id ident
		id.add(&o.Event)
		j.remember(k, id)
		if en := j.held[k]; en != nil {
			return j.tryRelease(en, ResultAdopted)
		}
		return nil
	}
	en := j.held[k]
	if en == nil {
		if id, ok := j.recall(k); ok {
			id.add(&o.Event)
			if id.complete() {
				// Its peer was released (or stored) already: complete
				// it and let it go at once.
				res := ResultAdopted
				j.remember(k, id)
				e := o.Event
				id.apply(&e)
				e.AddTag(TagJoined)
				e.AddTag(TagCallCounted) // its peer was stored and counts the call
				return []Release{{Event: e, Result: res}}
			}
		}
		var rel []Release
		for j.nHeld >= j.cfg.MaxHeld && len(j.queue) > 0 {
			rel = append(rel, j.evictOldest()...)
		}
		j.seq++
		en = &entry{key: k, deadline: now.Add(j.cfg.Wait), seq: j.seq}
		j.held[k] = en
		j.queue = append(j.queue, queued{k, en.seq, en.deadline})
		j.hold(en, o)
		return append(rel, j.tryRelease(en, ResultPaired)...)
	}
	for _, x := range en.obs {
		if x.Event.EventID == o.Event.EventID {
			// The same observation again (a sender's retry): the copy
			// held stands for it; this record's offset is not tracked,
			// the held one's (earlier) is.
			return nil
		}
	}
	j.hold(en, o)
	return j.tryRelease(en, ResultPaired)
}

func (j *Joiner) hold(en *entry, o Obs) {
	en.obs = append(en.obs, o)
	j.nHeld++
	p := j.parts[o.Partition]
	if p == nil {
		p = &offsets{live: map[int64]int{}}
		j.parts[o.Partition] = p
	}
	p.add(o.Offset)
}

// identity is what the held observations of en and the memory say.
func (j *Joiner) identity(en *entry) ident {
	var id ident
	for i := range en.obs {
		id.add(&en.obs[i].Event)
	}
	if m, ok := j.recall(en.key); ok {
		id.merge(m)
	}
	return id
}

// tryRelease releases en when its identity is complete.
func (j *Joiner) tryRelease(en *entry, result string) []Release {
	id := j.identity(en)
	if !id.complete() {
		return nil
	}
	if len(en.obs) == 1 {
		result = ResultAdopted // completed from memory, not from a held peer
	}
	return j.release(en, id, result, TagJoined)
}

// release removes en and returns its observations completed from id. One
// observation counts the call unless the join remembers a peer released or
// stored before (which counts it): the client's when held, else the first
// held. It is released first, so that the ingest role, which reads the
// call's observations in order from one partition, also counts it.
func (j *Joiner) release(en *entry, id ident, result, tag string) []Release {
	delete(j.held, en.key)
	_, peerStored := j.recall(en.key)
	counter := -1
	if !peerStored {
		counter = 0
		for i := range en.obs {
			if !event.IsObserverAgent(en.obs[i].Event.AgentID) { // the agent's own observation
				counter = i
				break
			}
		}
		en.obs[0], en.obs[counter] = en.obs[counter], en.obs[0]
		counter = 0
	}
	out := make([]Release, 0, len(en.obs))
	for i := range en.obs {
		o := &en.obs[i]
		j.nHeld--
		if p := j.parts[o.Partition]; p != nil {
			p.done(o.Offset)
		}
		e := o.Event
		filled := id.apply(&e)
		t, res := tag, result
		if tag == TagUnpaired && filled {
			// Timed out, but a peer (a gateway's, a client's without
			// server) gave it something.
			t = TagJoined
		}
		e.AddTag(t)
		if i != counter {
			e.AddTag(TagCallCounted)
		}
		out = append(out, Release{Event: e, Result: res})
	}
	j.remember(en.key, id)
	return out
}

// Expire releases, as they are, the calls held past their deadline.
func (j *Joiner) Expire(now time.Time) []Release {
	var out []Release
	for len(j.queue) > 0 {
		q := j.queue[0]
		en := j.held[q.key]
		if en == nil || en.seq != q.seq {
			j.queue = j.queue[1:]
			continue
		}
		if q.deadline.After(now) {
			break
		}
		j.queue = j.queue[1:]
		out = append(out, j.release(en, j.identity(en), ResultUnpaired, TagUnpaired)...)
	}
	if len(j.queue) == 0 {
		j.queue = nil // let the backing array go
	}
	return out
}

func (j *Joiner) evictOldest() []Release {
	for len(j.queue) > 0 {
		q := j.queue[0]
		j.queue = j.queue[1:]
		if en := j.held[q.key]; en != nil && en.seq == q.seq {
			return j.release(en, j.identity(en), ResultEvicted, TagUnpaired)
		}
	}
	return nil
}

// Committable is the offset to commit for partition p whose records up to
// next-1 were all added: the smallest offset of a record that still has a
// held observation, else next.
func (j *Joiner) Committable(p int32, next int64) int64 {
	if o := j.parts[p]; o != nil {
		if m, ok := o.min(); ok && m < next {
			return m
		}
	}
	return next
}

// DropPartitions forgets the held observations of the partitions (revoked
// or lost: their next owner reads them again from the committed offset).
// The memory of released calls stays.
func (j *Joiner) DropPartitions(ps []int32) {
	drop := map[int32]bool{}
	for _, p := range ps {
		drop[p] = true
		delete(j.parts, p)
	}
	for k, en := range j.held {
		if len(en.obs) > 0 && drop[en.obs[0].Partition] {
			j.nHeld -= len(en.obs)
			delete(j.held, k)
		}
	}
}

// offsets are the offsets of one partition's records with held
// observations: added in increasing order, released in any order.
type offsets struct {
	order []int64
	live  map[int64]int // offset → observations still held
}

func (o *offsets) add(off int64) {
	if n := len(o.order); n == 0 || o.order[n-1] != off {
		o.order = append(o.order, off)
	}
	o.live[off]++
}

func (o *offsets) done(off int64) {
	if o.live[off]--; o.live[off] <= 0 {
		delete(o.live, off)
	}
}

func (o *offsets) min() (int64, bool) {
	for len(o.order) > 0 {
		if o.live[o.order[0]] > 0 {
			return o.order[0], true
		}
		o.order = o.order[1:]
	}
	o.order = nil
	return 0, false
}
