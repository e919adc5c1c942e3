package enrich

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"sort"
)

// Bounds of one agent's state (constants: they only guard against
// pathological senders; real agents stay far below them).
const (
	// maxConnsPerAgent bounds the session/endpoint/transport keys of one
	// agent (a long-lived agent opens a new MCP session id per
	// connection); the key seen least recently is dropped.
	maxConnsPerAgent = 256
	// maxEntriesPerConn bounds the (name, version) pairs of one key. An
	// older version of a name is dropped first; a key that had to drop a
	// name is ambiguous from then on.
	maxEntriesPerConn = 16
	// maxServersPerAgent bounds the servers with derived sessions of one
	// agent; the one seen least recently is dropped.
	maxServersPerAgent = 64
	// lastSeenStep: a server entry whose only change is its last_seen is
	// written again when last_seen moved by this much (event time), so
	// the table is not rewritten on every call.
	lastSeenStep = int64(3600e9)
)

// agentKey identifies an agent: the unit of state and of ownership (the
// events topic is keyed by tenant + agent).
type agentKey struct{ tenant, agent string }

// connKind is a level of the connection rule, most specific first.
type connKind uint8

const (
	connSession   connKind = iota // the MCP session id
	connEndpoint                  // client name + server address:port
	connTransport                 // client name + transport, when no server address
	connAgent                     // the agent alone
)

// connKindNames are the Enum8 values of enrich_servers.conn_kind.
var connKindNames = [...]string{connSession: "session", connEndpoint: "endpoint", connTransport: "transport", connAgent: "agent"}

func parseConnKind(s string) (connKind, bool) {
	for k, n := range connKindNames {
		if n == s {
			return connKind(k), true
		}
	}
	return 0, false
}

// connKey is one connection of an agent at one level.
type connKey struct {
	kind   connKind
	port   uint16
	client string
	target string // session id, server address or transport
}

// serverEntry is one (server name, version) seen on one connection key.
type serverEntry struct {
	agent         *agentState
	conn          *conn
	name, version string
	firstNs       int64 // earliest event time it was seen at
	lastNs        int64 // latest
	writtenLastNs int64 // lastNs of the last row written or loaded
	dirty         bool  // in Enricher.dirtySrv
}

// conn is what one connection key has seen.
type conn struct {
	key     connKey
	entries []*serverEntry
	lastNs  int64
	lossy   bool // dropped a name (maxEntriesPerConn): ambiguous from then on
}

// at answers for an event at time t: the one server name seen on this key
// at or before t, with the version seen most recently at or before t; ""
// when none; ambiguous when several names were.
func (c *conn) at(t int64) (name, version string, ambiguous bool) {
	var verNs int64 = math.MinInt64
	for _, en := range c.entries {
		if en.firstNs > t {
			continue
		}
		if name == "" {
			name = en.name
		} else if en.name != name {
			return "", "", true
		}
		if en.version != "" && (en.firstNs > verNs || en.firstNs == verNs && en.version > version) {
			version, verNs = en.version, en.firstNs
		}
	}
	if name != "" && c.lossy {
		return "", "", true
	}
	return name, version, false
}

// versionAt is the version of server name seen most recently at or before
// t on this key ("" when none).
func (c *conn) versionAt(name string, t int64) string {
	var version string
	var verNs int64 = math.MinInt64
	for _, en := range c.entries {
		if en.firstNs > t || en.name != name || en.version == "" {
			continue
		}
		if en.firstNs > verNs || en.firstNs == verNs && en.version > version {
			version, verNs = en.version, en.firstNs
		}
	}
	return version
}

// session is one derived session of an agent and server.
type session struct {
	agent   *agentState
	server  string
	startNs int64 // event time of the event that opened it: input of key
	firstNs int64 // earliest event time it holds
	lastNs  int64 // latest
	key     string
	dirty   bool // in Enricher.dirtySess
}

// serverSessions are the remembered sessions of one agent and server,
// sorted by firstNs; their [firstNs, lastNs] intervals never overlap.
type serverSessions struct {
	list   []*session
	lastNs int64
}

// agentState is everything remembered about one agent.
type agentState struct {
	key        agentKey
	prev, next *agentState // LRU list, head = most recently used
	conns      map[connKey]*conn
	sessions   map[string]*serverSessions // by server name
	nDirty     int                        // entries and sessions not yet flushed or being flushed
	callSalt   uint64                     // its part of its calls' keys (calls.go); 0 until needed

	// Per Enrich call (valid while gen is the call's generation).
	gen      uint64
	lastT    int64 // latest event time seen in the call
	unsorted bool  // an event of the call was older than one before it
}

func newAgentState(k agentKey) *agentState {
	return &agentState{key: k, conns: map[connKey]*conn{}, sessions: map[string]*serverSessions{}}
}

// sessionKey is the derived session key: deterministic, so that a replay
// gives the same keys. "ds-" + 32 hex of SHA-256(tenant, agent, server,
// start time in unix ns).
func sessionKey(k agentKey, server string, startNs int64) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range [...]string{k.tenant, k.agent, server} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(startNs))
	h.Write(n[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	b := make([]byte, 3+32)
	copy(b, "ds-")
	hex.Encode(b[3:], sum[:16])
	return string(b)
}

// place returns the session an event at time t belongs to, opening one when
// none is near: the remembered session whose [first-gap, last+gap] holds t,
// the nearest if several (the earlier on a tie). The chosen session is
// stretched to hold t, so intervals stay disjoint and every event placed
// lies inside its session: placing it again (a replay) gives the same key.
func (ss *serverSessions) place(a *agentState, server string, t, gap int64, keep int, x *Enricher) *session {
	if n := len(ss.list); n > 0 {
		// Fast path: inside or just after the latest session.
		if l := ss.list[n-1]; t >= l.firstNs && t-l.lastNs <= gap {
			x.stretch(l, t)
			ss.lastNs = max(ss.lastNs, t)
			return l
		}
	}
	var best *session
	var bestD int64
	for _, s := range ss.list {
		var d int64
		switch {
		case t < s.firstNs:
			d = s.firstNs - t
		case t > s.lastNs:
			d = t - s.lastNs
		}
		if d <= gap && (best == nil || d < bestD) {
			best, bestD = s, d
		}
	}
	if best != nil {
		x.stretch(best, t)
		ss.lastNs = max(ss.lastNs, t)
		return best
	}
	s := &session{agent: a, server: server, startNs: t, firstNs: t, lastNs: t, key: sessionKey(a.key, server, t)}
	ss.insert(s, keep)
	ss.lastNs = max(ss.lastNs, t)
	x.markSession(s)
	return s
}

// insert adds s in firstNs order and drops the sessions that ended first
// beyond keep.
func (ss *serverSessions) insert(s *session, keep int) {
	i := sort.Search(len(ss.list), func(i int) bool { return ss.list[i].firstNs > s.firstNs })
	ss.list = append(ss.list, nil)
	copy(ss.list[i+1:], ss.list[i:])
	ss.list[i] = s
	for len(ss.list) > keep {
		old := 0
		for j, x := range ss.list {
			if x.lastNs < ss.list[old].lastNs {
				old = j
			}
		}
		ss.list = append(ss.list[:old], ss.list[old+1:]...)
	}
}
