package event

import "math/bits"

// field identifies a canonical Event field that an OTLP attribute maps onto.
type field uint8

const (
	fNone field = iota
	fMethod
	fProtocolVersion
	fTransport
	fSessionID
	fRequestID
	fConversationID
	fAgentID
	fAgentName
	fUserID
	fClientName
	fClientVersion
	fClientAddress
	fUserAgent
	fServerName
	fServerVersion
	fServerAddress
	fServerPort
	fToolName
	fToolCallID
	fPromptName
	fResourceURI
	fArguments
	fResult
	fErrorType
	fStatusCode
	fOrigin
	fTokenSubject
	fTokenAudience
	fTokenExpires
	fScopes
	fToolDescription
	fToolInputSchema
	fToolAnnotations
	fObserver
	fDecision // gateway allow/deny decision → Outcome denied
	fIsError  // boolean "the tool reported isError" → Outcome tool_error
	fOperation
	fToolDefinitions // gen_ai.tool.definitions JSON array
	fEventName
	fTenant
	numFields
)

// alias is one row of the attribute table: an attribute key, the canonical
// field it fills, and its rank. Rank 0 is the OTel semantic convention name;
// higher ranks are non-standard names used by real gateways and SDKs. When an
// event carries several names for the same field, the lowest rank wins,
// whatever the attribute order.
type alias struct {
	Key   string
	Field field
	Rank  uint8
	// Source documents where the name comes from (tests and docs/event.md).
	Source string
}

// attributeTable is THE table of attribute names mcpwatch understands on spans
// and log records. Everything not listed here ends up in AttrKeys/AttrValues.
// Keep docs/event.md and TestAttributeTable in step with it: the test has one
// case per row.
var attributeTable = []alias{
	// MCP semantic conventions (semconv v1.39.0, mcpconv).
	{"mcp.method.name", fMethod, 0, "semconv mcp"},
	{"mcp.protocol.version", fProtocolVersion, 0, "semconv mcp"},
	{"mcp.session.id", fSessionID, 0, "semconv mcp"},
	{"mcp.resource.uri", fResourceURI, 0, "semconv mcp"},
	{"jsonrpc.request.id", fRequestID, 0, "semconv jsonrpc"},
	{"network.transport", fTransport, 0, "semconv network"},
	{"rpc.response.status_code", fStatusCode, 0, "semconv rpc (JSON-RPC error code on MCP spans)"},
	{"error.type", fErrorType, 0, "semconv error"},
	// GenAI semantic conventions (genaiconv).
	{"gen_ai.operation.name", fOperation, 0, "semconv gen_ai"},
	{"gen_ai.tool.name", fToolName, 0, "semconv gen_ai"},
	{"gen_ai.tool.call.id", fToolCallID, 0, "semconv gen_ai"},
	{"gen_ai.tool.call.arguments", fArguments, 0, "semconv gen_ai (opt-in)"},
	{"gen_ai.tool.call.result", fResult, 0, "semconv gen_ai (opt-in)"},
	{"gen_ai.tool.description", fToolDescription, 0, "semconv gen_ai"},
	{"gen_ai.tool.definitions", fToolDefinitions, 0, "semconv gen_ai (opt-in)"},
	{"gen_ai.prompt.name", fPromptName, 0, "semconv gen_ai"},
	{"gen_ai.conversation.id", fConversationID, 0, "semconv gen_ai"},
	{"gen_ai.agent.id", fAgentID, 0, "semconv gen_ai"},
	{"gen_ai.agent.name", fAgentName, 0, "semconv gen_ai"},
	// General semantic conventions.
	{"user.id", fUserID, 0, "semconv user"},
	{"enduser.id", fUserID, 1, "semconv enduser (deprecated in favour of user.id)"},
	{"client.address", fClientAddress, 0, "semconv client"},
	{"server.address", fServerAddress, 0, "semconv server"},
	{"server.port", fServerPort, 0, "semconv server"},
	{"user_agent.original", fUserAgent, 0, "semconv user_agent"},
	{"http.request.header.origin", fOrigin, 0, "semconv http (captured request header)"},
	{"event.name", fEventName, 0, "semconv event"},

	// mcpwatch's own names (documented in docs/event.md, also used on the topic).
	{"mcpwatch.observer", fObserver, 0, "mcpwatch"},
	{"mcpwatch.tenant", fTenant, 0, "mcpwatch"},
	{"mcpwatch.client_name", fClientName, 0, "mcpwatch"},
	{"mcpwatch.client_version", fClientVersion, 0, "mcpwatch"},
	{"mcpwatch.server_name", fServerName, 0, "mcpwatch"},
	{"mcpwatch.server_version", fServerVersion, 0, "mcpwatch"},
	{"mcpwatch.origin", fOrigin, 1, "mcpwatch"},
	{"mcpwatch.decision", fDecision, 0, "mcpwatch"},
	{"mcpwatch.token_subject", fTokenSubject, 0, "mcpwatch"},
	{"mcpwatch.token_audience", fTokenAudience, 0, "mcpwatch"},
	{"mcpwatch.token_expires", fTokenExpires, 0, "mcpwatch (unix seconds or RFC 3339)"},
	{"mcpwatch.scopes", fScopes, 0, "mcpwatch (array or space-separated)"},
	{"mcpwatch.tool_input_schema", fToolInputSchema, 0, "mcpwatch (mcp.tools.snapshot)"},
	{"mcpwatch.tool_annotations", fToolAnnotations, 0, "mcpwatch (mcp.tools.snapshot)"},
	{"mcpwatch.is_error", fIsError, 0, "mcpwatch"},

	// Non-standard names seen in gateways, SDKs and older drafts.
	{"mcp.method", fMethod, 1, "older MCP semconv drafts, gateways"},
	{"mcp.tool.name", fToolName, 1, "docker/mcp-gateway (span mcp.tool.call), gateways"},
	{"mcp.tool", fToolName, 2, "gateways"},
	{"tool.name", fToolName, 3, "generic"},
	{"mcp.tool.description", fToolDescription, 1, "gateways"},
	{"mcp.tool.input_schema", fToolInputSchema, 1, "gateways / snapshot logs"},
	{"mcp.tool.annotations", fToolAnnotations, 1, "gateways / snapshot logs"},
	{"mcp.tool.arguments", fArguments, 1, "gateways"},
	{"mcp.tool.result", fResult, 1, "gateways"},
	{"mcp.request.id", fRequestID, 1, "gateways, MCP SDKs"},
	{"rpc.jsonrpc.request_id", fRequestID, 2, "older semconv rpc.jsonrpc.*"},
	{"mcp.request_id", fRequestID, 3, "gateways"},
	{"rpc.jsonrpc.error_code", fStatusCode, 1, "older semconv rpc.jsonrpc.*"},
	{"jsonrpc.error.code", fStatusCode, 2, "gateways"},
	{"mcp.error.code", fStatusCode, 3, "gateways"},
	{"mcp.session_id", fSessionID, 1, "gateways"},
	{"session.id", fSessionID, 2, "semconv session (generic)"},
	{"mcp.server.name", fServerName, 1, "docker/mcp-gateway, gateways"},
	{"mcp.server", fServerName, 2, "gateways"},
	{"fastmcp.server.name", fServerName, 3, "fastmcp 4.x (SERVER spans)"},
	{"mcp.server.version", fServerVersion, 1, "gateways"},
	{"mcp.client.name", fClientName, 1, "gateways"},
	{"mcp.client.version", fClientVersion, 1, "gateways"},
	{"mcp.transport", fTransport, 1, "gateways"},
	{"mcp.protocol_version", fProtocolVersion, 1, "gateways"},
	{"mcp.resource.name", fResourceURI, 2, "gateways"},
	{"mcp.resource_template.uri", fResourceURI, 3, "docker/mcp-gateway"},
	{"mcp.prompt.name", fPromptName, 1, "docker/mcp-gateway (span mcp.prompt.get)"},
	{"mcp.gateway.decision", fDecision, 1, "gateways"},
	{"gateway.decision", fDecision, 2, "gateways"},
	{"authz.decision", fDecision, 3, "policy engines"},
	{"mcp.auth.subject", fTokenSubject, 1, "gateways"},
	{"auth.subject", fTokenSubject, 2, "gateways"},
	{"mcp.auth.audience", fTokenAudience, 1, "gateways"},
	{"mcp.auth.expires", fTokenExpires, 1, "gateways"},
	{"mcp.auth.scopes", fScopes, 1, "gateways"},
	{"enduser.scope", fScopes, 2, "semconv enduser (deprecated)"},
}

// lookupAlias finds key's row of attributeTable (nil if none): a hash of
// the key's words picks the only row it can be, and comparing the words
// (which, up to 24 bytes, are the whole key) or else the strings decides.
// Cheaper than a map lookup; it runs for every attribute of every span.
func lookupAlias(key string) *alias {
	n := len(key)
	var w [3]uint64
	if n >= 8 { // keyWords, inline for the common case
		w = [3]uint64{load64(key, 0), load64(key, n/2-4), load64(key, n-8)}
	} else {
		w = keyWords(key)
	}
	i := attrSlots[attrHash(w, n, attrSeed)]
	if i == 0 {
		return nil
	}
	a := &attributeTable[i-1]
	if len(key) <= 24 {
		if len(a.Key) != len(key) || attrWords[i-1] != w {
			return nil
		}
		return a
	}
	if a.Key != key {
		return nil
	}
	return a
}

const attrSlotBits = 10

// keyWords returns key's first, middle and last eight bytes; a key
// shorter than eight bytes is the first word alone. They tell apart every
// key of the table (e.g. mcp.session.id and mcp.session_id) and cover
// all of a key of up to 24 bytes.
func keyWords(key string) (w [3]uint64) {
	n := len(key)
	if n < 8 {
		for i := 0; i < n; i++ {
			w[0] = w[0]<<8 | uint64(key[i])
		}
		return w
	}
	return [3]uint64{load64(key, 0), load64(key, n/2-4), load64(key, n-8)}
}

func attrHash(w [3]uint64, n int, seed uint64) uint32 {
	x := w[0] ^ bits.RotateLeft64(w[1], 21) ^ bits.RotateLeft64(w[2], 42) ^ uint64(n)
	return uint32(x * seed >> (64 - attrSlotBits))
}

// load64 reads s[i:i+8] little-endian (one load once compiled).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// attrWords holds the keyWords of every row of attributeTable.
var attrWords = func() [][3]uint64 {
	ws := make([][3]uint64, len(attributeTable))
	for i, a := range attributeTable {
		ws[i] = keyWords(a.Key)
	}
	return ws
}()

// attrSlots maps attrHash to 1 + the row's index in attributeTable (0:
// none); attrSeed is the first multiplier of a fixed sequence under which
// no two keys share a slot (found at init, in a few tries).
var attrSlots, attrSeed = func() (*[1 << attrSlotBits]uint8, uint64) {
	seed := uint64(0x9e3779b97f4a7c15)
	for try := 0; try < 1e5; try++ {
		seed = seed*0x2c1b3c6d297a2d39 + 0x7f4a7c15 | 1
		var t [1 << attrSlotBits]uint8
		ok := true
		for i, a := range attributeTable {
			h := attrHash(keyWords(a.Key), len(a.Key), seed)
			if t[h] != 0 {
				ok = false
				break
			}
			t[h] = uint8(i + 1)
		}
		if ok {
			return &t, seed
		}
	}
	panic("event: no collision-free hash for attributeTable; widen attrHash")
}()
