package event

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Stored text hygiene (docs/event.md, "Stored text"). Every string of an
// event is valid UTF-8 after mapping (invalid bytes become U+FFFD), and the
// identity fields — the names, ids and addresses people read in
// clickhouse-client and Grafana and that rules group by — carry no
// character a terminal or a bidi renderer acts on: C0 and C1 controls, DEL
// and Unicode format characters (bidi overrides and isolates, zero-width
// characters, tag characters, ...) and line/paragraph separators are
// written as visible escapes (\x1B, \u202E, \U000E0041), and the event gets
// the tag escaped:<column>. The evidence fields (arguments, result, tool
// description, input schema, annotations, extra attribute values) keep
// their characters, so rules such as mcp-tool-description-hidden-characters
// still see them.

// TagEscaped prefixes the tag escaped:<column> of an event whose identity
// field <column> had characters written as escapes.
const TagEscaped = "escaped:"

// sanitize makes e's strings valid UTF-8 and escapes the identity fields.
func (e *Event) sanitize() {
	// Nearly every identity field is printable ASCII: look at the bytes
	// first, and build the field table only when one is not.
	if !(plainASCII(e.Tenant) && plainASCII(e.ServiceName) && plainASCII(e.ServiceInstance) &&
		plainASCII(e.HostName) && plainASCII(e.Method) && plainASCII(e.ProtocolVersion) &&
		plainASCII(e.Transport) && plainASCII(e.SessionID) && plainASCII(e.RequestID) &&
		plainASCII(e.CallID) && plainASCII(e.ConversationID) && plainASCII(e.SessionKey) &&
		plainASCII(e.AgentID) && plainASCII(e.AgentName) && plainASCII(e.UserID) &&
		plainASCII(e.ClientName) && plainASCII(e.ClientVersion) && plainASCII(e.ClientAddress) &&
		plainASCII(e.UserAgent) && plainASCII(e.ServerName) && plainASCII(e.ServerVersion) &&
		plainASCII(e.ServerAddress) && plainASCII(e.ToolName) && plainASCII(e.ToolCallID) &&
		plainASCII(e.PromptName) && plainASCII(e.ResourceURI) && plainASCII(e.Origin) &&
		plainASCII(e.ErrorType) && plainASCII(e.TokenSubject) && plainASCII(e.TokenAudience)) {
		e.escapeIdentityFields()
	}
	for i, s := range e.Scopes {
		if !plainASCII(s) && !cleanText(s) {
			esc, changed := escapeIdentity(s, MaxExtraValueLen)
			e.Scopes[i] = esc
			if changed {
				e.AddTag(TagEscaped + "scopes")
			}
		}
	}
	for i, s := range e.AttrKeys {
		if !plainASCII(s) && !cleanText(s) {
			esc, changed := escapeIdentity(s, MaxExtraKeyLen)
			e.AttrKeys[i] = esc
			if changed {
				e.AddTag(TagEscaped + "attr_keys")
			}
		}
	}
	for _, p := range [...]*string{&e.Arguments, &e.Result, &e.ToolDescription, &e.ToolInputSchema, &e.ToolAnnotations} {
		if !utf8.ValidString(*p) {
			*p = validUTF8(*p)
		}
	}
	for i, s := range e.AttrValues {
		if !utf8.ValidString(s) {
			e.AttrValues[i] = truncateUTF8(validUTF8(s), MaxExtraValueLen)
		}
	}
	for i, s := range e.Tags {
		if !utf8.ValidString(s) {
			e.Tags[i] = validUTF8(s)
		}
	}
}

// escapeIdentityFields rewrites the identity fields that need it.
func (e *Event) escapeIdentityFields() {
	for _, f := range e.identityFields() {
		if s := *f.p; !plainASCII(s) && !cleanText(s) {
			esc, changed := escapeIdentity(s, MaxFieldLen)
			*f.p = esc
			if changed {
				e.AddTag(TagEscaped + f.column)
			}
		}
	}
}

// identityField is one identity string of an event and its column.
type identityField struct {
	p      *string
	column string
}

// identityFields lists the identity strings of e: every string column
// except the evidence fields and the ids mcpwatch computes itself (event,
// trace, span and definition hashes, which are hex).
func (e *Event) identityFields() [30]identityField {
	return [...]identityField{
		{&e.Tenant, "tenant"}, {&e.ServiceName, "service_name"}, {&e.ServiceInstance, "service_instance"},
		{&e.HostName, "host_name"}, {&e.Method, "method"}, {&e.ProtocolVersion, "protocol_version"},
		{&e.Transport, "transport"}, {&e.SessionID, "session_id"}, {&e.RequestID, "request_id"},
		{&e.CallID, "call_id"}, {&e.ConversationID, "conversation_id"}, {&e.SessionKey, "session_key"},
		{&e.AgentID, "agent_id"}, {&e.AgentName, "agent_name"}, {&e.UserID, "user_id"},
		{&e.ClientName, "client_name"}, {&e.ClientVersion, "client_version"}, {&e.ClientAddress, "client_address"},
		{&e.UserAgent, "user_agent"}, {&e.ServerName, "server_name"}, {&e.ServerVersion, "server_version"},
		{&e.ServerAddress, "server_address"}, {&e.ToolName, "tool_name"}, {&e.ToolCallID, "tool_call_id"},
		{&e.PromptName, "prompt_name"}, {&e.ResourceURI, "resource_uri"}, {&e.Origin, "origin"},
		{&e.ErrorType, "error_type"}, {&e.TokenSubject, "token_subject"}, {&e.TokenAudience, "token_audience"},
	}
}

// IdentityStrings returns pointers to e's identity strings but the tenant
// (which comes from the sender's credentials or the collector's config):
// the fields internal/redact scans for secrets besides the evidence. The
// same fields as identityFields, without the column names (it runs per
// event in the collector).
func (e *Event) IdentityStrings() [29]*string {
	return [...]*string{
		&e.ServiceName, &e.ServiceInstance, &e.HostName, &e.Method, &e.ProtocolVersion,
		&e.Transport, &e.SessionID, &e.RequestID, &e.CallID, &e.ConversationID, &e.SessionKey,
		&e.AgentID, &e.AgentName, &e.UserID, &e.ClientName, &e.ClientVersion, &e.ClientAddress,
		&e.UserAgent, &e.ServerName, &e.ServerVersion, &e.ServerAddress, &e.ToolName, &e.ToolCallID,
		&e.PromptName, &e.ResourceURI, &e.Origin, &e.ErrorType, &e.TokenSubject, &e.TokenAudience,
	}
}

// plainASCII reports whether s is printable ASCII only (the common case,
// which needs no work).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// cleanText reports whether s is valid UTF-8 without a neutral rune (an
// identity field that needs no rewriting: "José", "カーソル").
func cleanText(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || neutral(r) {
			return false
		}
		i += size
	}
	return true
}

// validUTF8 replaces each invalid byte sequence of s by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// neutral reports the runes identity fields never store as they are: C0 and
// C1 controls, DEL, format characters (Cf: bidi embeddings, overrides and
// isolates, zero-width space/joiners, word joiner, BOM, soft hyphen, tag
// characters) and the line and paragraph separators.
func neutral(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029' || r >= 0xa0 && unicode.Is(unicode.Cf, r)
}

// escapeIdentity returns s as valid UTF-8 with the neutral runes written as
// \xNN (below U+0100), \uNNNN or \UNNNNNNNN, cut to at most max bytes
// without splitting an escape; changed reports whether a rune was escaped.
// Invalid bytes become U+FFFD (not a change: the character is visible).
func escapeIdentity(s string, max int) (out string, changed bool) {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		var piece string
		var buf [10]byte
		switch {
		case r == utf8.RuneError && size == 1:
			piece = "\uFFFD"
		case neutral(r):
			changed = true
			piece = string(appendEscape(buf[:0], r))
		default:
			piece = s[i-size : i]
		}
		if b.Len()+len(piece) > max {
			break
		}
		b.WriteString(piece)
	}
	return b.String(), changed
}

// appendEscape writes r as \xNN, \uNNNN or \UNNNNNNNN (uppercase hex, the
// spelling the hidden-character functions of the rules also recognise).
func appendEscape(b []byte, r rune) []byte {
	const upperHex = "0123456789ABCDEF"
	switch {
	case r < 0x100:
		return append(b, '\\', 'x', upperHex[r>>4], upperHex[r&0xf])
	case r < 0x10000:
		b = append(b, '\\', 'u')
		for s := 12; s >= 0; s -= 4 {
			b = append(b, upperHex[r>>s&0xf])
		}
		return b
	default:
		b = append(b, '\\', 'U')
		for s := 28; s >= 0; s -= 4 {
			b = append(b, upperHex[r>>s&0xf])
		}
		return b
	}
}
