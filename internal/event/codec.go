package event

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The Kafka value is a plain OTLP ExportLogsServiceRequest (protobuf), so any
// OTLP-aware consumer (e.g. an otelcol kafkareceiver with encoding
// otlp_proto) can read the topic. Each Event is one LogRecord:
//   - resource attributes: mcpwatch.tenant, service.name,
//     service.instance.id, host.name (consecutive events sharing them share
//     one ResourceLogs);
//   - scope name "mcpwatch";
//   - LogRecord.Timestamp = Time, ObservedTimestamp = IngestedAt,
//     TraceId/SpanId when they are valid hex, EventName and attribute
//     event.name = "mcpwatch.audit_event";
//   - every other field as a log attribute, with its OTel name where one
//     exists and mcpwatch.<column> otherwise (see attr* constants); zero
//     values are omitted.

// AuditEventName is the event.name of the records on the topic.
const AuditEventName = "mcpwatch.audit_event"

// ScopeName is the instrumentation scope of the records on the topic.
const ScopeName = "mcpwatch"

// Attribute names on the topic.
const (
	attrEventName       = "event.name"
	attrEventID         = "mcpwatch.event_id"
	attrKind            = "mcpwatch.kind"
	attrDurationNs      = "mcpwatch.duration_ns"
	attrSource          = "mcpwatch.source"
	attrObserver        = "mcpwatch.observer"
	attrTraceID         = "mcpwatch.trace_id" // only when not 32 hex digits
	attrSpanID          = "mcpwatch.span_id"  // only when not 16 hex digits
	attrParentSpanID    = "mcpwatch.parent_span_id"
	attrTenant          = "mcpwatch.tenant"
	attrServiceName     = "service.name"
	attrServiceInstance = "service.instance.id"
	attrHostName        = "host.name"
	attrMethod          = "mcp.method.name"
	attrProtocolVersion = "mcp.protocol.version"
	attrTransport       = "network.transport"
	attrSessionID       = "mcp.session.id"
	attrRequestID       = "jsonrpc.request.id"
	attrCallID          = "mcpwatch.call_id"
	attrConversationID  = "gen_ai.conversation.id"
	attrSessionKey      = "mcpwatch.session_key"
	attrAgentID         = "gen_ai.agent.id"
	attrAgentName       = "gen_ai.agent.name"
	attrUserID          = "user.id"
	attrClientName      = "mcpwatch.client_name"
	attrClientVersion   = "mcpwatch.client_version"
	attrClientAddress   = "client.address"
	attrUserAgent       = "user_agent.original"
	attrServerName      = "mcpwatch.server_name"
	attrServerVersion   = "mcpwatch.server_version"
	attrServerAddress   = "server.address"
	attrServerPort      = "server.port"
	attrToolName        = "gen_ai.tool.name"
	attrToolCallID      = "gen_ai.tool.call.id"
	attrPromptName      = "gen_ai.prompt.name"
	attrResourceURI     = "mcp.resource.uri"
	attrArguments       = "gen_ai.tool.call.arguments"
	attrResult          = "gen_ai.tool.call.result"
	attrArgumentsSize   = "mcpwatch.arguments_size"
	attrResultSize      = "mcpwatch.result_size"
	attrOutcome         = "mcpwatch.outcome"
	attrErrorType       = "error.type"
	attrStatusCode      = "rpc.response.status_code"
	attrOrigin          = "mcpwatch.origin"
	attrTokenSubject    = "mcpwatch.token_subject"
	attrTokenAudience   = "mcpwatch.token_audience"
	attrTokenExpires    = "mcpwatch.token_expires" // unix nanoseconds
	attrScopes          = "mcpwatch.scopes"
	attrToolDescription = "gen_ai.tool.description"
	attrToolInputSchema = "mcpwatch.tool_input_schema"
	attrToolAnnotations = "mcpwatch.tool_annotations"
	attrToolDefHash     = "mcpwatch.tool_definition_hash"
	attrTags            = "mcpwatch.tags"
	attrAttrKeys        = "mcpwatch.attr_keys"
	attrAttrValues      = "mcpwatch.attr_values"
)

// Marshal encodes events as one OTLP ExportLogsServiceRequest (protobuf).
// It writes the protobuf directly (see protoenc.go): building pdata objects
// first costs several times more; the tests check the output against pdata
// and the reference OTLP protobuf types.
func Marshal(events []Event) ([]byte, error) {
	return appendRequest(nil, events)
}

// encodeRecord lists the fields of one LogRecord for w: the single place
// that decides how each Event field travels (decodeRecord is its inverse).
func encodeRecord(w *pbWriter, e *Event) {
	w.fixed64(1, tsNanos(e.Time))
	w.fixed64(11, tsNanos(e.IngestedAt))
	tid, tidOK := traceIDFromHex(e.TraceID)
	if tidOK {
		w.bytes(9, tid[:])
	}
	sid, sidOK := spanIDFromHex(e.SpanID)
	if sidOK {
		w.bytes(10, sid[:])
	}
	w.str(12, AuditEventName)
	w.constAttr(&eventNameAttrs, AuditEventName)
	w.strAttr(attrEventID, e.EventID)
	w.constAttr(&kindAttrs, string(e.Kind))
	w.intAttr(attrDurationNs, int64(e.DurationNs))
	w.constAttr(&sourceAttrs, string(e.Source))
	w.constAttr(&observerAttrs, string(e.Observer))
	if !tidOK {
		w.strAttr(attrTraceID, e.TraceID)
	}
	if !sidOK {
		w.strAttr(attrSpanID, e.SpanID)
	}
	w.strAttr(attrParentSpanID, e.ParentSpanID)
	w.strAttr(attrMethod, e.Method)
	w.strAttr(attrProtocolVersion, e.ProtocolVersion)
	w.strAttr(attrTransport, e.Transport)
	w.strAttr(attrSessionID, e.SessionID)
	w.strAttr(attrRequestID, e.RequestID)
	w.strAttr(attrCallID, e.CallID)
	w.strAttr(attrConversationID, e.ConversationID)
	w.strAttr(attrSessionKey, e.SessionKey)
	w.strAttr(attrAgentID, e.AgentID)
	w.strAttr(attrAgentName, e.AgentName)
	w.strAttr(attrUserID, e.UserID)
	w.strAttr(attrClientName, e.ClientName)
	w.strAttr(attrClientVersion, e.ClientVersion)
	w.strAttr(attrClientAddress, e.ClientAddress)
	w.strAttr(attrUserAgent, e.UserAgent)
	w.strAttr(attrServerName, e.ServerName)
	w.strAttr(attrServerVersion, e.ServerVersion)
	w.strAttr(attrServerAddress, e.ServerAddress)
	w.intAttr(attrServerPort, int64(e.ServerPort))
	w.strAttr(attrToolName, e.ToolName)
	w.strAttr(attrToolCallID, e.ToolCallID)
	w.strAttr(attrPromptName, e.PromptName)
	w.strAttr(attrResourceURI, e.ResourceURI)
	w.strAttr(attrArguments, e.Arguments)
	w.strAttr(attrResult, e.Result)
	w.intAttr(attrArgumentsSize, int64(e.ArgumentsSize))
	w.intAttr(attrResultSize, int64(e.ResultSize))
	w.constAttr(&outcomeAttrs, string(e.Outcome))
	w.strAttr(attrErrorType, e.ErrorType)
	w.intAttr(attrStatusCode, int64(e.StatusCode))
	w.strAttr(attrOrigin, e.Origin)
	w.strAttr(attrTokenSubject, e.TokenSubject)
	w.strAttr(attrTokenAudience, e.TokenAudience)
	if !e.TokenExpires.IsZero() {
		w.intAttr(attrTokenExpires, e.TokenExpires.UnixNano())
	}
	w.strsAttr(attrScopes, e.Scopes)
	w.strAttr(attrToolDescription, e.ToolDescription)
	w.strAttr(attrToolInputSchema, e.ToolInputSchema)
	w.strAttr(attrToolAnnotations, e.ToolAnnotations)
	w.strAttr(attrToolDefHash, e.ToolDefinitionHash)
	w.strsAttr(attrTags, e.Tags)
	w.strsAttr(attrAttrKeys, e.AttrKeys)
	w.strsAttr(attrAttrValues, e.AttrValues)
}

func tsNanos(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func traceIDFromHex(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if len(s) != 32 || !decodeLowerHex(id[:], s) {
		return pcommon.TraceID{}, false
	}
	return id, !id.IsEmpty()
}

func spanIDFromHex(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if len(s) != 16 || !decodeLowerHex(id[:], s) {
		return pcommon.SpanID{}, false
	}
	return id, !id.IsEmpty()
}

// unhexLower maps '0'-'9' and 'a'-'f' to their value, anything else to 0xff.
var unhexLower = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeLowerHex decodes s (len(s) == 2*len(dst)) into dst; false unless
// s is lowercase hex.
func decodeLowerHex(dst []byte, s string) bool {
	for i := range dst {
		hi, lo := unhexLower[s[2*i]], unhexLower[s[2*i+1]]
		if hi|lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// decodeAttr sets the field a topic attribute carries (the inverse of
// encodeRecord). Unknown keys are ignored.
func decodeAttr(e *Event, k string, v *anyValue) {
	switch k {
	case attrEventID:
		e.EventID = v.s
	case attrKind:
		e.Kind = Kind(v.s)
	case attrDurationNs:
		e.DurationNs = uint64(v.i)
	case attrSource:
		e.Source = Source(v.s)
	case attrObserver:
		e.Observer = Observer(v.s)
	case attrTraceID:
		e.TraceID = v.s
	case attrSpanID:
		e.SpanID = v.s
	case attrParentSpanID:
		e.ParentSpanID = v.s
	case attrMethod:
		e.Method = v.s
	case attrProtocolVersion:
		e.ProtocolVersion = v.s
	case attrTransport:
		e.Transport = v.s
	case attrSessionID:
		e.SessionID = v.s
	case attrRequestID:
		e.RequestID = v.s
	case attrCallID:
		e.CallID = v.s
	case attrConversationID:
		e.ConversationID = v.s
	case attrSessionKey:
		e.SessionKey = v.s
	case attrAgentID:
		e.AgentID = v.s
	case attrAgentName:
		e.AgentName = v.s
	case attrUserID:
		e.UserID = v.s
	case attrClientName:
		e.ClientName = v.s
	case attrClientVersion:
		e.ClientVersion = v.s
	case attrClientAddress:
		e.ClientAddress = v.s
	case attrUserAgent:
		e.UserAgent = v.s
	case attrServerName:
		e.ServerName = v.s
	case attrServerVersion:
		e.ServerVersion = v.s
	case attrServerAddress:
		e.ServerAddress = v.s
	case attrServerPort:
		e.ServerPort = uint16(v.i)
	case attrToolName:
		e.ToolName = v.s
	case attrToolCallID:
		e.ToolCallID = v.s
	case attrPromptName:
		e.PromptName = v.s
	case attrResourceURI:
		e.ResourceURI = v.s
	case attrArguments:
		e.Arguments = v.s
	case attrResult:
		e.Result = v.s
	case attrArgumentsSize:
		e.ArgumentsSize = uint32(v.i)
	case attrResultSize:
		e.ResultSize = uint32(v.i)
	case attrOutcome:
		e.Outcome = Outcome(v.s)
	case attrErrorType:
		e.ErrorType = v.s
	case attrStatusCode:
		e.StatusCode = int32(v.i)
	case attrOrigin:
		e.Origin = v.s
	case attrTokenSubject:
		e.TokenSubject = v.s
	case attrTokenAudience:
		e.TokenAudience = v.s
	case attrTokenExpires:
		e.TokenExpires = time.Unix(0, v.i).UTC()
	case attrScopes:
		e.Scopes = v.arr
	case attrToolDescription:
		e.ToolDescription = v.s
	case attrToolInputSchema:
		e.ToolInputSchema = v.s
	case attrToolAnnotations:
		e.ToolAnnotations = v.s
	case attrToolDefHash:
		e.ToolDefinitionHash = v.s
	case attrTags:
		e.Tags = v.arr
	case attrAttrKeys:
		e.AttrKeys = v.arr
	case attrAttrValues:
		e.AttrValues = v.arr
	}
}
