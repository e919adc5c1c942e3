package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Identity and correlation computed by the (stateless) mapping: the agent
// of every event, the server of server observations, and the call id that
// the client, server and gateway observations of one call share
// (docs/event.md, "Identity and correlation"). What only an earlier
// request can tell is left to the analyzer's enrichment.

// DefaultAgentResourceAttributes is the agent chain's resource part when
// MapOptions.AgentResourceAttributes is nil: service.name (+
// service.instance.id), else host.name.
var DefaultAgentResourceAttributes = [][]string{{"service.name", "service.instance.id"}, {"host.name"}}

// UnknownAgent is the agent of an event that names none in any way (no
// agent id, no configured resource attribute, no user or client name).
const UnknownAgent = "unknown"

// Limits of AgentResourceAttributes.
const (
	maxAgentGroups     = 8
	maxAgentGroupAttrs = 4
)

// ParseAgentResourceAttributes reads the configuration form of the chain:
// one group per element, its attribute names joined with "+"
// ("service.name+service.instance.id"). Every problem is reported.
func ParseAgentResourceAttributes(groups []string) ([][]string, error) {
	var errs []error
	if len(groups) > maxAgentGroups {
		errs = append(errs, fmt.Errorf("at most %d groups, got %d", maxAgentGroups, len(groups)))
	}
	out := make([][]string, 0, len(groups))
	seen := map[string]bool{}
	for i, g := range groups {
		g = strings.TrimSpace(g)
		if g == "" {
			errs = append(errs, fmt.Errorf("group %d is empty", i+1))
			continue
		}
		names := strings.Split(g, "+")
		if len(names) > maxAgentGroupAttrs {
			errs = append(errs, fmt.Errorf("group %q: at most %d attributes", g, maxAgentGroupAttrs))
		}
		for j, n := range names {
			n = strings.TrimSpace(n)
			names[j] = n
			if n == "" || strings.ContainsAny(n, " \t,/") {
				errs = append(errs, fmt.Errorf("group %q: %q is not an attribute name", g, n))
			}
		}
		if seen[strings.Join(names, "+")] {
			errs = append(errs, fmt.Errorf("group %q is listed twice", g))
		}
		seen[strings.Join(names, "+")] = true
		out = append(out, names)
	}
	return out, errors.Join(errs...)
}

// FormatAgentResourceAttributes is the inverse of ParseAgentResourceAttributes.
func FormatAgentResourceAttributes(groups [][]string) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = strings.Join(g, "+")
	}
	return out
}

// isUnknownService reports the OTel SDKs' default service.name
// ("unknown_service" or "unknown_service:<process>"), which names no one.
func isUnknownService(s string) bool { return strings.HasPrefix(s, "unknown_service") }

// resourceAgent applies the chain's resource groups to a resource: the
// first group whose first attribute is set (service.name not being the
// SDK default) gives its set values joined with "/". A group of one
// attribute costs no allocation.
func resourceAgent(attrs []rawKV, groups [][]string) string {
	if groups == nil {
		groups = DefaultAgentResourceAttributes
	}
	sdkDefault := ""
	for _, g := range groups {
		first, ok := getRaw(attrs, g[0])
		if !ok {
			continue
		}
		s := first.short()
		if s == "" {
			continue
		}
		if g[0] == "service.name" && isUnknownService(s) {
			if sdkDefault == "" {
				sdkDefault = s
			}
			continue
		}
		for _, name := range g[1:] {
			if v, ok := getRaw(attrs, name); ok {
				if x := v.short(); x != "" {
					s += "/" + x
				}
			}
		}
		return truncateUTF8(s, MaxFieldLen)
	}
	// Last resort before the user or client: the SDK's default name, when
	// the chain asked for service.name.
	return sdkDefault
}

// maxCallRequestID is the longest request id a call id carries verbatim;
// a longer one is replaced by its hash.
const maxCallRequestID = 64

// callerSpan is the span id of the client side of e's request: the
// client observation's own span, the parent span of a server or gateway
// observation (the MCP SDKs carry the client span's context in _meta, so
// the server span is its child). An agent talking to several servers in
// one trace numbers each connection's requests from 1: the caller span
// tells their calls apart.
func callerSpan(e *Event) string {
	if e.Observer == ObserverServer || e.Observer == ObserverGateway {
		return e.ParentSpanID
	}
	return e.SpanID
}

// callIDLen is the length of the call id of an event with hasCallKey.
func callIDLen(e *Event) int {
	n := 32 + len(callerSpan(e)) + 1 + len(e.Method) + 1
	if len(e.RequestID) > maxCallRequestID {
		return n + 16
	}
	return n + len(e.RequestID)
}

// putCallID writes the call id of e (hasCallKey) into b (callIDLen bytes):
//
//	<trace id><caller span id>:<method>:<request id>   request ids up to 64 bytes
//	<trace id><caller span id>:<method>#<16 hex>       longer ones: their FNV-1a 64 hash
//
// The first 48 hex digits are the event id of the client span. MCP methods
// contain neither ':' nor '#', so the form is unambiguous. It is readable,
// and cheap to compress on the Kafka topic: it repeats the event's ids and
// method (a hashed form cost lz4 ~18% more per event).
func putCallID(b []byte, e *Event) {
	n := copy(b, e.TraceID)
	n += copy(b[n:], callerSpan(e))
	b[n] = ':'
	n++
	n += copy(b[n:], e.Method)
	if len(e.RequestID) > maxCallRequestID {
		b[n] = '#'
		putCallHash(b[n+1:], fnv1a(e.RequestID))
		return
	}
	b[n] = ':'
	copy(b[n+1:], e.RequestID)
}

// fnv1a is FNV-1a, 64 bits.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// hasCallKey reports whether e's call id can be derived from the request
// rather than the observation.
func hasCallKey(e *Event) bool {
	return len(e.TraceID) == 32 && e.RequestID != "" && e.Method != "" && callerSpan(e) != ""
}

// putCallHash writes the 16 lowercase hex digits of h into dst: each half
// of h spread to one nibble per byte, then the digits made eight at a
// time (no table, no loop).
func putCallHash(dst []byte, h uint64) {
	_ = dst[15]
	binary.BigEndian.PutUint64(dst[:8], hexWord(uint32(h>>32)))
	binary.BigEndian.PutUint64(dst[8:16], hexWord(uint32(h)))
}

// hexWord returns the 8 ASCII hex digits of v, most significant first
// when stored big-endian.
func hexWord(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	letters := (x + 0x0606060606060606) >> 4 & 0x0101010101010101 // 1 where the nibble is ≥ 10
	return x + 0x3030303030303030 + letters*('a'-'0'-10)
}

// setCallID sets e.CallID on its own (a new string): putCallID's form
// when e has a trace id, a caller span, a request id and a method, else
// the event id.
func setCallID(e *Event) {
	if !hasCallKey(e) {
		e.CallID = e.EventID
		return
	}
	b := make([]byte, callIDLen(e))
	putCallID(b, e)
	e.CallID = ownedString(b)
}

// CallIDOf returns the call id the mapping gives an event with e's trace
// id, request id, method and event id (for generators of canonical events).
func CallIDOf(e *Event) string {
	c := *e
	setCallID(&c)
	return c.CallID
}

// callFromRequest reports whether e's call id was derived from its request
// (and so is shared with the other observations of the call).
func callFromRequest(e *Event) bool { return e.CallID != "" && e.CallID != e.EventID }

// serverToClient reports the requests an MCP server sends its client (MCP
// spec: roots, sampling, elicitation). For them the client observation is
// made by the server and the server observation by the agent.
func serverToClient(method string) bool {
	switch method {
	case "roots/list", "sampling/createMessage", "elicitation/create":
		return true
	}
	return false
}

// agentSide reports an observation made by the agent (the MCP client):
// the client side of its requests, the server side of a server's.
func agentSide(e *Event) bool {
	if serverToClient(e.Method) {
		return e.Observer == ObserverServer
	}
	return e.Observer == ObserverClient
}

// serverSide reports an observation made by the MCP server.
func serverSide(e *Event) bool {
	if serverToClient(e.Method) {
		return e.Observer == ObserverClient
	}
	return e.Observer == ObserverServer
}

// postItem is an event the mapping finishes after the whole request is
// mapped: its agent or server name depends on the other events.
type postItem struct {
	i   int32 // index in Batch.Events
	res int32 // index in mapper.res
}

// deferIdentity records the event just appended, which has no agent yet
// (none from the span or its resource, or a server or gateway
// observation, whose resource is not the caller), for finishIdentity.
func (m *mapper) deferIdentity(res int32) {
	m.post = append(m.post, postItem{int32(len(m.b.Events) - 1), res})
}

// finishIdentity runs after propagate: it links the observations of one
// call within the request, then fills what deferIdentity recorded.
func (m *mapper) finishIdentity() {
	evs := m.b.Events
	if len(evs) == 0 {
		return
	}
	if m.lacking && m.parented {
		m.linkCalls()
	}
	var byCall map[string]int32 // call id → client observation, when needed
	if m.nClient > 0 && (m.nServer > 0 || len(m.post) > 0) {
		byCall = make(map[string]int32, m.nClient)
		for i := range evs {
			e := &evs[i]
			if agentSide(e) && e.Kind == KindMessage && callFromRequest(e) {
				if _, dup := byCall[e.CallID]; !dup {
					byCall[e.CallID] = int32(i)
				}
			}
		}
		// A client observation learns the server from the server
		// observation of the same call in this request.
		for i := range evs {
			s := &evs[i]
			if !serverSide(s) || s.ServerName == "" || !callFromRequest(s) {
				continue
			}
			if ci, ok := byCall[s.CallID]; ok && evs[ci].ServerName == "" {
				evs[ci].ServerName, evs[ci].ServerVersion = s.ServerName, s.ServerVersion
			}
		}
	}
	for _, p := range m.post {
		e := &evs[p.i]
		if e.AgentID != "" {
			continue
		}
		switch {
		case serverSide(e) || e.Observer == ObserverGateway:
			// The caller, not the process that observed it: the
			// client observation of the same call, else the user and
			// client the request names, else the observer itself,
			// marked as such ("server:<its resource identity>").
			if ci, ok := byCall[e.CallID]; ok && callFromRequest(e) && evs[ci].AgentID != "" {
				e.AgentID = evs[ci].AgentID
			} else if e.UserID != "" || e.ClientName != "" {
				e.AgentID = truncateUTF8(e.UserID+"@"+e.ClientName, MaxFieldLen)
			} else {
				e.AgentID = m.observerAgent(e.Observer, p.res)
			}
		default:
			if e.UserID != "" || e.ClientName != "" {
				e.AgentID = truncateUTF8(e.UserID+"@"+e.ClientName, MaxFieldLen)
			} else {
				e.AgentID = UnknownAgent
			}
		}
	}
}

// Prefixes of the marked fallback agent of a server or gateway observation
// that names no caller (observerAgent).
const (
	ServerAgentPrefix  = "server:"
	GatewayAgentPrefix = "gateway:"
)

// IsObserverAgent reports whether agent is the marked fallback agent of a
// server or gateway observation ("server:<its resource identity>",
// "gateway:…"): the observer named itself because no caller was known.
// The analyzer's call join (internal/calljoin) replaces it with the agent
// of the call's client observation.
func IsObserverAgent(agent string) bool {
	return strings.HasPrefix(agent, ServerAgentPrefix) || strings.HasPrefix(agent, GatewayAgentPrefix)
}

// CallIDFromRequest reports whether e's call id was derived from its
// request (trace id, caller span, method, request id), and so is shared
// with the other observations of the call; otherwise it is the event id.
func CallIDFromRequest(e *Event) bool { return callFromRequest(e) }

// observerAgent is the marked fallback agent of a server or gateway
// observation: "server:" or "gateway:" then its resource's identity.
func (m *mapper) observerAgent(o Observer, res int32) string {
	r := &m.res[res]
	if o == ObserverGateway {
		if r.gatewayAgent == "" {
			r.gatewayAgent = truncateUTF8(GatewayAgentPrefix+orUnknown(r.agent), MaxFieldLen)
		}
		return r.gatewayAgent
	}
	if r.serverAgent == "" {
		r.serverAgent = truncateUTF8(ServerAgentPrefix+orUnknown(r.agent), MaxFieldLen)
	}
	return r.serverAgent
}

func orUnknown(s string) string {
	if s == "" {
		return UnknownAgent
	}
	return s
}

// linkCalls gives the observations of one call in this request one call
// id where only one of them could derive it from the request: a span
// whose parent span is an MCP span of the same trace and method (the
// MCP SDK's "MCP send" span under fastmcp's CLIENT span; a SERVER span
// under its CLIENT span when one process exports both) takes the call id
// of the one that has a request id. Only requests that hold a span event
// without a request-derived call id and one with a parent pay for it.
func (m *mapper) linkCalls() {
	evs := m.b.Events
	bySpan := make(map[string]int32, len(evs))
	for i := range evs {
		e := &evs[i]
		if e.Kind == KindMessage && e.Source == SourceSpan && e.SpanID != "" {
			bySpan[e.TraceID+e.SpanID] = int32(i)
		}
	}
	for i := range evs {
		c := &evs[i]
		if c.Kind != KindMessage || c.ParentSpanID == "" {
			continue
		}
		pi, ok := bySpan[c.TraceID+c.ParentSpanID]
		if !ok {
			continue
		}
		p := &evs[pi]
		// Only a client span over a client span (a wrapper) or over a
		// server span: under a server span, a client span is another
		// call the tool makes.
		if p.Method != c.Method || p.Observer != ObserverClient ||
			c.Observer != ObserverClient && c.Observer != ObserverServer ||
			p.ToolName != "" && c.ToolName != "" && p.ToolName != c.ToolName {
			continue
		}
		switch {
		case callFromRequest(c) && !callFromRequest(p):
			p.CallID = c.CallID
			if p.RequestID == "" {
				p.RequestID = c.RequestID
			}
		case callFromRequest(p) && !callFromRequest(c):
			c.CallID = p.CallID
			if c.RequestID == "" {
				c.RequestID = p.RequestID
			}
		default:
			continue
		}
		// One call, so one server: the wrapper (fastmcp's CLIENT span has
		// no server name) learns it from the span it wraps, or the other
		// way round.
		if p.ServerName == "" && c.ServerName != "" {
			p.ServerName, p.ServerVersion = c.ServerName, c.ServerVersion
		} else if c.ServerName == "" && p.ServerName != "" {
			c.ServerName, c.ServerVersion = p.ServerName, p.ServerVersion
		}
	}
	// Tool definitions follow the message that listed them.
	for i := range evs {
		if d := &evs[i]; d.Kind == KindToolDefinition && d.Source == SourceSpan {
			if pi, ok := bySpan[d.TraceID+d.SpanID]; ok {
				d.CallID, d.RequestID = evs[pi].CallID, evs[pi].RequestID
			}
		}
	}
}
