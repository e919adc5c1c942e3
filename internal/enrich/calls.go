package enrich

import (
	"hash/maphash"
	"math/bits"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/recent"
)

// TagCallCounted marks a message observation of a call (its call_id) that
// an earlier observation of the same agent already counts
// (event.TagCallCounted). The rollup's buckets are (minute, agent, server,
// tool, method, outcome) and totals sum them, so the client's and the
// server's observation of one call, a few milliseconds apart across a
// minute boundary (or with different outcomes), would otherwise count the
// call twice.
const TagCallCounted = event.TagCallCounted

// maxCalls bounds the calls remembered (all agents of this consumer): the
// most recent maxCalls/2 to maxCalls of them. The observations of one call
// arrive seconds apart; a pair further apart than that many calls of the
// consumer is counted once per bucket its observations fall in, as without
// the tag.
const maxCalls = 1 << 16

// calls remembers, per call of an agent, which observation counts it (its
// event id), so a retried or replayed batch gives the same event the same
// answer. Keys and event ids are kept as 64-bit hashes (maphash, seeded
// per process; the agent's part once per agent: callSalt), the most
// recent maxCalls (recent.Map). Two calls of the memory colliding (about
// 65 536² / 2⁶⁵ ≈ 10⁻¹⁰ per full memory) would leave one observation
// uncounted in the rollup.
type calls struct {
	seen *recent.Map[uint64, uint64] // hash(tenant, agent, call id) → hash(event id)
}

// callSeed seeds the hashes of the call memory (per process: not chosen by
// a sender, and an agent's salt stays valid however often its state is
// dropped and made again).
var callSeed = maphash.MakeSeed()

// callSalt is the part of a call's key that names its tenant and agent,
// computed once per agent state.
func callSalt(k agentKey) uint64 {
	return bits.RotateLeft64(maphash.String(callSeed, k.agent), 21) ^ bits.RotateLeft64(maphash.String(callSeed, k.tenant), 42)
}

// counted reports whether e is a later observation of a call an earlier
// observation (another event id) of its agent already counts, and
// remembers e as the one that counts it otherwise. Only messages whose
// call id joins observations (it differs from the event id) take part;
// duplicates (not counted anyway) do not.
func (c *calls) counted(a *agentState, e *event.Event) bool {
	if e.Kind != event.KindMessage || e.CallID == "" || e.CallID == e.EventID || e.HasTag(event.TagDuplicate) {
		return false
	}
	if c.seen == nil {
		c.seen = recent.New[uint64, uint64](maxCalls)
	}
	if a.callSalt == 0 {
		a.callSalt = callSalt(a.key) | 1
	}
	k, id := maphash.String(callSeed, e.CallID)^a.callSalt, maphash.String(callSeed, e.EventID)
	if first, ok := c.seen.Get(k); ok {
		return first != id
	}
	c.seen.Put(k, id)
	return false
}

// len is the number of calls remembered.
func (c *calls) len() int {
	if c.seen == nil {
		return 0
	}
	return c.seen.Len()
}

// reset forgets every call (partitions revoked: their next owner starts
// afresh, see Forget).
func (c *calls) reset() {
	*c = calls{}
}
