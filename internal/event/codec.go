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

var protoMarshaler plog.ProtoMarshaler
var protoUnmarshaler plog.ProtoUnmarshaler

// Marshal encodes events as one OTLP ExportLogsServiceRequest (protobuf).
func Marshal(events []Event) ([]byte, error) {
	ld := plog.NewLogs()
	rls := ld.ResourceLogs()
	var lrs plog.LogRecordSlice
	var prev *Event
	for i := range events {
		e := &events[i]
		if prev == nil || prev.Tenant != e.Tenant || prev.ServiceName != e.ServiceName ||
			prev.ServiceInstance != e.ServiceInstance || prev.HostName != e.HostName {
			rl := rls.AppendEmpty()
			ra := rl.Resource().Attributes()
			ra.EnsureCapacity(4)
			ra.PutStr(attrTenant, e.Tenant)
			putStr(ra, attrServiceName, e.ServiceName)
			putStr(ra, attrServiceInstance, e.ServiceInstance)
			putStr(ra, attrHostName, e.HostName)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(ScopeName)
			lrs = sl.LogRecords()
		}
		prev = e
		encodeRecord(e, lrs.AppendEmpty())
	}
	b, err := protoMarshaler.MarshalLogs(ld)
	if err != nil {
		return nil, fmt.Errorf("cannot marshal events: %w", err)
	}
	return b, nil
}

func putStr(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func putInt(m pcommon.Map, k string, v int64) {
	if v != 0 {
		m.PutInt(k, v)
	}
}

func putStrs(m pcommon.Map, k string, v []string) {
	if len(v) == 0 {
		return
	}
	s := m.PutEmptySlice(k)
	s.EnsureCapacity(len(v))
	for _, x := range v {
		s.AppendEmpty().SetStr(x)
	}
}

func timeToTS(t time.Time) pcommon.Timestamp {
	if t.IsZero() {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}

func tsToTime(ts pcommon.Timestamp) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

func encodeRecord(e *Event, lr plog.LogRecord) {
	lr.SetTimestamp(timeToTS(e.Time))
	lr.SetObservedTimestamp(timeToTS(e.IngestedAt))
	lr.SetEventName(AuditEventName)
	a := lr.Attributes()
	a.EnsureCapacity(24)
	a.PutStr(attrEventName, AuditEventName)
	putStr(a, attrEventID, e.EventID)
	putStr(a, attrKind, string(e.Kind))
	putInt(a, attrDurationNs, int64(e.DurationNs))
	putStr(a, attrSource, string(e.Source))
	putStr(a, attrObserver, string(e.Observer))
	if id, ok := traceIDFromHex(e.TraceID); ok {
		lr.SetTraceID(id)
	} else {
		putStr(a, attrTraceID, e.TraceID)
	}
	if id, ok := spanIDFromHex(e.SpanID); ok {
		lr.SetSpanID(id)
	} else {
		putStr(a, attrSpanID, e.SpanID)
	}
	putStr(a, attrParentSpanID, e.ParentSpanID)
	putStr(a, attrMethod, e.Method)
	putStr(a, attrProtocolVersion, e.ProtocolVersion)
	putStr(a, attrTransport, e.Transport)
	putStr(a, attrSessionID, e.SessionID)
	putStr(a, attrRequestID, e.RequestID)
	putStr(a, attrConversationID, e.ConversationID)
	putStr(a, attrSessionKey, e.SessionKey)
	putStr(a, attrAgentID, e.AgentID)
	putStr(a, attrAgentName, e.AgentName)
	putStr(a, attrUserID, e.UserID)
	putStr(a, attrClientName, e.ClientName)
	putStr(a, attrClientVersion, e.ClientVersion)
	putStr(a, attrClientAddress, e.ClientAddress)
	putStr(a, attrUserAgent, e.UserAgent)
	putStr(a, attrServerName, e.ServerName)
	putStr(a, attrServerVersion, e.ServerVersion)
	putStr(a, attrServerAddress, e.ServerAddress)
	putInt(a, attrServerPort, int64(e.ServerPort))
	putStr(a, attrToolName, e.ToolName)
	putStr(a, attrToolCallID, e.ToolCallID)
	putStr(a, attrPromptName, e.PromptName)
	putStr(a, attrResourceURI, e.ResourceURI)
	putStr(a, attrArguments, e.Arguments)
	putStr(a, attrResult, e.Result)
	putInt(a, attrArgumentsSize, int64(e.ArgumentsSize))
	putInt(a, attrResultSize, int64(e.ResultSize))
	putStr(a, attrOutcome, string(e.Outcome))
	putStr(a, attrErrorType, e.ErrorType)
	putInt(a, attrStatusCode, int64(e.StatusCode))
	putStr(a, attrOrigin, e.Origin)
	putStr(a, attrTokenSubject, e.TokenSubject)
	putStr(a, attrTokenAudience, e.TokenAudience)
	if !e.TokenExpires.IsZero() {
		a.PutInt(attrTokenExpires, e.TokenExpires.UnixNano())
	}
	putStrs(a, attrScopes, e.Scopes)
	putStr(a, attrToolDescription, e.ToolDescription)
	putStr(a, attrToolInputSchema, e.ToolInputSchema)
	putStr(a, attrToolAnnotations, e.ToolAnnotations)
	putStr(a, attrToolDefHash, e.ToolDefinitionHash)
	putStrs(a, attrTags, e.Tags)
	putStrs(a, attrAttrKeys, e.AttrKeys)
	putStrs(a, attrAttrValues, e.AttrValues)
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
