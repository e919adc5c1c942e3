package event

import (
	"encoding/hex"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
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

var protoUnmarshaler plog.ProtoUnmarshaler

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
	w.strAttr(attrEventName, AuditEventName)
	w.strAttr(attrEventID, e.EventID)
	w.strAttr(attrKind, string(e.Kind))
	w.intAttr(attrDurationNs, int64(e.DurationNs))
	w.strAttr(attrSource, string(e.Source))
	w.strAttr(attrObserver, string(e.Observer))
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
	w.strAttr(attrOutcome, string(e.Outcome))
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

func tsToTime(ts pcommon.Timestamp) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

func traceIDFromHex(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if len(s) != 32 || !isLowerHex(s) {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil && !id.IsEmpty()
}

func spanIDFromHex(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if len(s) != 16 || !isLowerHex(s) {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil && !id.IsEmpty()
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Unmarshal decodes a value written by Marshal. Records whose event.name is
// not mcpwatch.audit_event are skipped.
func Unmarshal(b []byte) ([]Event, error) {
	ld, err := protoUnmarshaler.UnmarshalLogs(b)
	if err != nil {
		return nil, fmt.Errorf("cannot unmarshal events: %w", err)
	}
	events := make([]Event, 0, ld.LogRecordCount())
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		ra := rl.Resource().Attributes()
		var tenant, svc, inst, host string
		if v, ok := ra.Get(attrTenant); ok {
			tenant = v.Str()
		}
		if v, ok := ra.Get(attrServiceName); ok {
			svc = v.Str()
		}
		if v, ok := ra.Get(attrServiceInstance); ok {
			inst = v.Str()
		}
		if v, ok := ra.Get(attrHostName); ok {
			host = v.Str()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if lr.EventName() != AuditEventName {
					if v, ok := lr.Attributes().Get(attrEventName); !ok || v.Str() != AuditEventName {
						continue
					}
				}
				events = append(events, Event{Tenant: tenant, ServiceName: svc, ServiceInstance: inst, HostName: host})
				decodeRecord(&events[len(events)-1], lr)
			}
		}
	}
	return events, nil
}

func decodeRecord(e *Event, lr plog.LogRecord) {
	e.Time = tsToTime(lr.Timestamp())
	e.IngestedAt = tsToTime(lr.ObservedTimestamp())
	if t := lr.TraceID(); !t.IsEmpty() {
		e.TraceID = hex.EncodeToString(t[:])
	}
	if s := lr.SpanID(); !s.IsEmpty() {
		e.SpanID = hex.EncodeToString(s[:])
	}
	lr.Attributes().Range(func(k string, v pcommon.Value) bool {
		switch k {
		case attrEventID:
			e.EventID = v.Str()
		case attrKind:
			e.Kind = Kind(v.Str())
		case attrDurationNs:
			e.DurationNs = uint64(v.Int())
		case attrSource:
			e.Source = Source(v.Str())
		case attrObserver:
			e.Observer = Observer(v.Str())
		case attrTraceID:
			e.TraceID = v.Str()
		case attrSpanID:
			e.SpanID = v.Str()
		case attrParentSpanID:
			e.ParentSpanID = v.Str()
		case attrMethod:
			e.Method = v.Str()
		case attrProtocolVersion:
			e.ProtocolVersion = v.Str()
		case attrTransport:
			e.Transport = v.Str()
		case attrSessionID:
			e.SessionID = v.Str()
		case attrRequestID:
			e.RequestID = v.Str()
		case attrConversationID:
			e.ConversationID = v.Str()
		case attrSessionKey:
			e.SessionKey = v.Str()
		case attrAgentID:
			e.AgentID = v.Str()
		case attrAgentName:
			e.AgentName = v.Str()
		case attrUserID:
			e.UserID = v.Str()
		case attrClientName:
			e.ClientName = v.Str()
		case attrClientVersion:
			e.ClientVersion = v.Str()
		case attrClientAddress:
			e.ClientAddress = v.Str()
		case attrUserAgent:
			e.UserAgent = v.Str()
		case attrServerName:
			e.ServerName = v.Str()
		case attrServerVersion:
			e.ServerVersion = v.Str()
		case attrServerAddress:
			e.ServerAddress = v.Str()
		case attrServerPort:
			e.ServerPort = uint16(v.Int())
		case attrToolName:
			e.ToolName = v.Str()
		case attrToolCallID:
			e.ToolCallID = v.Str()
		case attrPromptName:
			e.PromptName = v.Str()
		case attrResourceURI:
			e.ResourceURI = v.Str()
		case attrArguments:
			e.Arguments = v.Str()
		case attrResult:
			e.Result = v.Str()
		case attrArgumentsSize:
			e.ArgumentsSize = uint32(v.Int())
		case attrResultSize:
			e.ResultSize = uint32(v.Int())
		case attrOutcome:
			e.Outcome = Outcome(v.Str())
		case attrErrorType:
			e.ErrorType = v.Str()
		case attrStatusCode:
			e.StatusCode = int32(v.Int())
		case attrOrigin:
			e.Origin = v.Str()
		case attrTokenSubject:
			e.TokenSubject = v.Str()
		case attrTokenAudience:
			e.TokenAudience = v.Str()
		case attrTokenExpires:
			e.TokenExpires = time.Unix(0, v.Int()).UTC()
		case attrScopes:
			e.Scopes = sliceStrings(v)
		case attrToolDescription:
			e.ToolDescription = v.Str()
		case attrToolInputSchema:
			e.ToolInputSchema = v.Str()
		case attrToolAnnotations:
			e.ToolAnnotations = v.Str()
		case attrToolDefHash:
			e.ToolDefinitionHash = v.Str()
		case attrTags:
			e.Tags = sliceStrings(v)
		case attrAttrKeys:
			e.AttrKeys = sliceStrings(v)
		case attrAttrValues:
			e.AttrValues = sliceStrings(v)
		}
		return true
	})
	if len(e.AttrValues) != len(e.AttrKeys) {
		// Keep the arrays parallel whatever a foreign producer wrote.
		n := min(len(e.AttrKeys), len(e.AttrValues))
		e.AttrKeys, e.AttrValues = e.AttrKeys[:n], e.AttrValues[:n]
	}
}

func sliceStrings(v pcommon.Value) []string {
	if v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	s := v.Slice()
	out := make([]string, s.Len())
	for i := range out {
		out[i] = valueString(s.At(i))
	}
	return out
}
