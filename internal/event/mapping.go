package event

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MapOptions parameterise one mapping call.
type MapOptions struct {
	// Tenant comes from the sender's credentials. "" means: use the resource
	// attribute mcpwatch.tenant, else "default".
	Tenant string
	// ReceivedAt is the collector's receive time (Event.IngestedAt). Zero means
	// time.Now() at the start of the call.
	ReceivedAt time.Time
}

// Batch is the result of mapping one OTLP request.
type Batch struct {
	Events []Event
	// Dropped counts spans and log records that produced no event.
	Dropped int
	// DropReasons counts Dropped by reason (the Drop* constants).
	DropReasons map[string]int
}

// Reasons a span or log record produced no event.
const (
	DropNotMCP          = "not_mcp"          // no MCP or GenAI tool semantics found
	DropInvalidTraceID  = "invalid_trace_id" // an MCP span without a trace id
	DropToolDefNoName   = "tool_definition_without_name"
	DropInvalidToolDefs = "invalid_tool_definitions" // unparsable gen_ai.tool.definitions / tools/list output
)

// Limits on what one event may carry besides its canonical fields.
const (
	// MaxExtraAttrs caps AttrKeys/AttrValues per event; further attributes are
	// counted in the extra attribute mcpwatch.attrs_dropped.
	MaxExtraAttrs = 64
	// MaxExtraKeyLen and MaxExtraValueLen cap one extra attribute's key and
	// value in bytes (values are cut at a UTF-8 boundary).
	MaxExtraKeyLen   = 128
	MaxExtraValueLen = 1024
	// MaxFieldLen caps identity fields (method, names, ids, ...) in bytes;
	// Arguments, Result and tool definitions are capped by internal/redact.
	MaxFieldLen = 1024
	// maxValueDepth bounds recursion into nested OTLP values and JSON.
	maxValueDepth = 32
)

// Default tenant when neither the sender nor the resource names one.
const DefaultTenant = "default"

// Log event names mcpwatch maps (DESIGN §2).
const (
	LogEventAudit         = "mcp.audit"
	LogEventToolsSnapshot = "mcp.tools.snapshot"
)

// FromTraces maps the MCP spans of an OTLP traces request onto events.
// Non-MCP spans are dropped and counted. It never panics on any input.
func FromTraces(td ptrace.Traces, o MapOptions) Batch {
	m := newMapper(o)
	m.b.Events = make([]Event, 0, td.SpanCount())
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := m.resource(rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope().Name()
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				m.span(&res, scope, spans.At(k))
			}
		}
	}
	m.propagate()
	return m.b
}

// FromLogs maps log records with event.name mcp.audit and mcp.tools.snapshot
// onto events. Other records are dropped and counted. It never panics.
func FromLogs(ld plog.Logs, o MapOptions) Batch {
	m := newMapper(o)
	m.b.Events = make([]Event, 0, ld.LogRecordCount())
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := m.resource(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				m.log(&res, rl.Resource(), lrs.At(k))
			}
		}
	}
	m.propagate()
	return m.b
}

type mapper struct {
	o MapOptions
	b Batch
	// childRequestIDs: request ids found on non-MCP child spans, by parent.
	childRequestIDs map[pcommon.SpanID]string
}

func newMapper(o MapOptions) *mapper {
	if o.ReceivedAt.IsZero() {
		o.ReceivedAt = time.Now()
	}
	o.ReceivedAt = o.ReceivedAt.UTC()
	return &mapper{o: o}
}

func (m *mapper) drop(reason string) {
	m.b.Dropped++
	if m.b.DropReasons == nil {
		m.b.DropReasons = make(map[string]int, 2)
	}
	m.b.DropReasons[reason]++
}

// resInfo holds what an event takes from its resource.
type resInfo struct {
	tenant          string
	serviceName     string
	serviceInstance string
	hostName        string
	observer        Observer
}

func (m *mapper) resource(attrs pcommon.Map) resInfo {
	var r resInfo
	if v, ok := attrs.Get("service.name"); ok {
		r.serviceName = short(v)
	}
	if v, ok := attrs.Get("service.instance.id"); ok {
		r.serviceInstance = short(v)
	}
	if v, ok := attrs.Get("host.name"); ok {
		r.hostName = short(v)
	}
	if v, ok := attrs.Get("mcpwatch.observer"); ok {
		r.observer = parseObserver(short(v))
	}
	r.tenant = m.o.Tenant
	if r.tenant == "" {
		if v, ok := attrs.Get("mcpwatch.tenant"); ok {
			r.tenant = short(v)
		}
	}
	if r.tenant == "" {
		r.tenant = DefaultTenant
	}
	return r
}

func parseObserver(s string) Observer {
	switch strings.ToLower(s) {
	case "client":
		return ObserverClient
	case "server":
		return ObserverServer
	case "gateway", "proxy":
		return ObserverGateway
	}
	return ""
}

// scratch collects, while the attributes of one span or record are read,
// what is not directly an Event field.
type scratch struct {
	rank      [numFields]uint8 // rank+1 of the alias that set the field; 0 = unset
	operation string
	decision  string
	toolDefs  string
	eventName string
	isError   bool
	observer  Observer
	// OpenLLMetry (traceloop) attributes.
	tlInput, tlOutput  string
	tlSpanKind, tlName string
	tlWorkflow         string
	hasTraceloop       bool
	extrasDropped      int
	attrCount          int // attributes on the span/record, to size the extras once
}

// take reports whether the alias may set its field (no better-ranked alias
// already did) and records it.
func (s *scratch) take(a alias) bool {
	cur := s.rank[a.Field]
	if cur != 0 && cur <= a.Rank+1 {
		return false
	}
	s.rank[a.Field] = a.Rank + 1
	return true
}

// applyAttrs reads attrs onto e. Unknown attributes become extras.
func (m *mapper) applyAttrs(e *Event, s *scratch, attrs pcommon.Map) {
	s.attrCount = attrs.Len()
	attrs.Range(func(k string, v pcommon.Value) bool {
		a, ok := attrIndex[k]
		if !ok {
			switch k {
			case "traceloop.entity.input":
				s.tlInput, s.hasTraceloop = valueString(v), true
				return true
			case "traceloop.entity.output":
				s.tlOutput, s.hasTraceloop = valueString(v), true
				return true
			case "traceloop.span.kind":
				s.tlSpanKind, s.hasTraceloop = short(v), true
				return true
			case "traceloop.entity.name":
				s.tlName, s.hasTraceloop = short(v), true
				return true
			case "traceloop.workflow.name":
				// FastMCP server instrumentation: "<server name>.mcp".
				s.tlWorkflow = short(v)
				return true
			}
			addExtra(e, s, k, v)
			return true
		}
		if !s.take(a) {
			return true
		}
		setField(e, s, a.Field, v)
		return true
	})
	if s.extrasDropped > 0 {
		e.AttrKeys = append(e.AttrKeys, "mcpwatch.attrs_dropped")
		e.AttrValues = append(e.AttrValues, strconv.Itoa(s.extrasDropped))
	}
}

func addExtra(e *Event, s *scratch, k string, v pcommon.Value) {
	if len(e.AttrKeys) >= MaxExtraAttrs {
		s.extrasDropped++
		return
	}
	if e.AttrKeys == nil {
		n := min(s.attrCount, MaxExtraAttrs) + 1
		e.AttrKeys, e.AttrValues = make([]string, 0, n), make([]string, 0, n)
	}
	e.AttrKeys = append(e.AttrKeys, truncateUTF8(k, MaxExtraKeyLen))
	e.AttrValues = append(e.AttrValues, truncateUTF8(valueString(v), MaxExtraValueLen))
}

func setField(e *Event, s *scratch, f field, v pcommon.Value) {
	switch f {
	case fMethod:
		e.Method = short(v)
	case fProtocolVersion:
		e.ProtocolVersion = short(v)
	case fTransport:
		e.Transport = short(v)
	case fSessionID:
		e.SessionID = short(v)
	case fRequestID:
		e.RequestID = short(v)
	case fConversationID:
		e.ConversationID = short(v)
	case fAgentID:
		e.AgentID = short(v)
	case fAgentName:
		e.AgentName = short(v)
	case fUserID:
		e.UserID = short(v)
	case fClientName:
		e.ClientName = short(v)
	case fClientVersion:
		e.ClientVersion = short(v)
	case fClientAddress:
		e.ClientAddress = short(v)
	case fUserAgent:
		e.UserAgent = short(v)
	case fServerName:
		e.ServerName = short(v)
	case fServerVersion:
		e.ServerVersion = short(v)
	case fServerAddress:
		e.ServerAddress = short(v)
	case fServerPort:
		if n, ok := valueInt(v); ok && n >= 0 && n <= 65535 {
			e.ServerPort = uint16(n)
		}
	case fToolName:
		e.ToolName = short(v)
	case fToolCallID:
		e.ToolCallID = short(v)
	case fPromptName:
		e.PromptName = short(v)
	case fResourceURI:
		e.ResourceURI = short(v)
	case fArguments:
		e.Arguments = valueString(v)
		e.ArgumentsSize = clampU32(len(e.Arguments))
	case fResult:
		e.Result = valueString(v)
		e.ResultSize = clampU32(len(e.Result))
	case fErrorType:
		e.ErrorType = short(v)
	case fStatusCode:
		if n, ok := valueInt(v); ok && n >= -1<<31 && n < 1<<31 {
			e.StatusCode = int32(n)
		}
	case fOrigin:
		e.Origin = short(v)
	case fTokenSubject:
		e.TokenSubject = short(v)
	case fTokenAudience:
		e.TokenAudience = valueString(v)
	case fTokenExpires:
		e.TokenExpires = valueTime(v)
	case fScopes:
		e.Scopes = valueStrings(v)
	case fToolDescription:
		e.ToolDescription = valueString(v)
	case fToolInputSchema:
		e.ToolInputSchema = canonicalOrRaw(valueString(v))
	case fToolAnnotations:
		e.ToolAnnotations = canonicalOrRaw(valueString(v))
	case fObserver:
		s.observer = parseObserver(short(v))
	case fDecision:
		s.decision = short(v)
	case fIsError:
		if v.Type() == pcommon.ValueTypeBool {
			s.isError = v.Bool()
		} else {
			s.isError, _ = strconv.ParseBool(short(v))
		}
	case fOperation:
		s.operation = short(v)
	case fToolDefinitions:
		s.toolDefs = valueString(v)
	case fEventName:
		s.eventName = short(v)
	case fTenant:
		// Only the resource attribute (or the sender) sets the tenant; a
		// record-level mcpwatch.tenant is ignored so a sender cannot spoof it.
	}
}

// isDenied reports whether a gateway decision value means the call was refused.
func isDenied(d string) bool {
	switch strings.ToLower(strings.TrimSpace(d)) {
	case "deny", "denied", "block", "blocked", "reject", "rejected", "refuse", "refused", "forbidden", "drop":
		return true
	}
	return false
}

// spanShape says why a span is an MCP event.
type spanShape uint8

const (
	shapeNone        spanShape = iota
	shapeSemconv               // mcp.method.name (or alias)
	shapeExecTool              // gen_ai.operation.name = execute_tool
	shapeToolAlias             // only a tool name alias (mcp.tool.name) — a gateway tool call
	shapeTLMethod              // OpenLLMetry "<method>.mcp"
	shapeTLTool                // OpenLLMetry "<tool>.tool"
	shapeGatewayName           // a gateway span name such as "mcp.tool.call"
)

// classify decides cheaply, before any allocation, whether a span is MCP.
func classify(scope string, span ptrace.Span) spanShape {
	attrs := span.Attributes()
	if v, ok := attrs.Get("mcp.method.name"); ok && v.Str() != "" {
		return shapeSemconv
	}
	if v, ok := attrs.Get("mcp.method"); ok && v.Str() != "" {
		return shapeSemconv
	}
	if v, ok := attrs.Get("gen_ai.operation.name"); ok && v.Str() == "execute_tool" {
		return shapeExecTool
	}
	name := span.Name()
	if strings.HasSuffix(name, ".mcp") && len(name) > 4 && isTraceloop(scope, attrs) {
		if name == "mcp.client.session" || name == "mcp.server.session" {
			return shapeNone
		}
		return shapeTLMethod
	}
	if strings.HasSuffix(name, ".tool") && len(name) > 5 && isTraceloop(scope, attrs) {
		return shapeTLTool
	}
	if _, ok := attrs.Get("mcp.tool.name"); ok {
		return shapeToolAlias
	}
	if _, ok := gatewaySpanMethods[name]; ok {
		return shapeGatewayName
	}
	return shapeNone
}

// gatewaySpanMethods maps span names of gateways that name spans after the
// operation instead of setting mcp.method.name (docker/mcp-gateway:
// pkg/telemetry StartToolCallSpan, StartPromptSpan, ...) to the MCP method.
var gatewaySpanMethods = map[string]string{
	"mcp.tool.call":              "tools/call",
	"mcp.prompt.get":             "prompts/get",
	"mcp.resource.read":          "resources/read",
	"mcp.resource_template.read": "resources/read",
	"mcp.initialize":             "initialize",
	"mcp.list.tools":             "tools/list",
	"mcp.list.prompts":           "prompts/list",
	"mcp.list.resources":         "resources/list",
	"mcp.list.resourceTemplates": "resources/templates/list",
}

// isTraceloop reports whether a span comes from OpenLLMetry's MCP
// instrumentation: its scope, or its traceloop.* attributes.
func isTraceloop(scope string, attrs pcommon.Map) bool {
	if strings.Contains(scope, "traceloop") || strings.Contains(scope, "instrumentation.mcp") ||
		strings.Contains(scope, "instrumentation-mcp") {
		return true
	}
	if _, ok := attrs.Get("traceloop.span.kind"); ok {
		return true
	}
	if _, ok := attrs.Get("traceloop.entity.input"); ok {
		return true
	}
	_, ok := attrs.Get("traceloop.entity.output")
	return ok
}

// newEvent appends a zero Event to the batch and returns it.
func (m *mapper) newEvent() *Event {
	if n := len(m.b.Events); n < cap(m.b.Events) {
		m.b.Events = m.b.Events[:n+1]
		e := &m.b.Events[n]
		*e = Event{} // the capacity beyond len is zero unless the batch was cut back
		return e
	}
	m.b.Events = append(m.b.Events, Event{})
	return &m.b.Events[len(m.b.Events)-1]
}

func (m *mapper) span(res *resInfo, scope string, span ptrace.Span) {
	shape := classify(scope, span)
	if shape == shapeNone {
		m.drop(DropNotMCP)
		// OpenLLMetry for Python puts the JSON-RPC id on a child span
		// ("ResponseStreamWriter", mcp.request.id) of the request span.
		if v, ok := span.Attributes().Get("mcp.request.id"); ok {
			if p := span.ParentSpanID(); !p.IsEmpty() {
				if m.childRequestIDs == nil {
					m.childRequestIDs = make(map[pcommon.SpanID]string)
				}
				m.childRequestIDs[p] = short(v)
			}
		}
		return
	}
	tid := span.TraceID()
	if tid.IsEmpty() {
		m.drop(DropInvalidTraceID)
		return
	}
	sid := span.SpanID()
	// Set the fields in place: appending an Event literal copies the whole
	// (large) struct with write barriers.
	e := m.newEvent()
	e.Tenant = res.tenant
	e.Kind = KindMessage
	e.Source = SourceSpan
	e.ServiceName = res.serviceName
	e.ServiceInstance = res.serviceInstance
	e.HostName = res.hostName
	e.IngestedAt = m.o.ReceivedAt
	e.Outcome = OutcomeOK
	// One allocation for event id, trace id and span id (slices of it).
	var ids [64]byte
	hex.Encode(ids[:32], tid[:])
	n := 32
	if !sid.IsEmpty() {
		hex.Encode(ids[32:48], sid[:])
		n = 48
	}
	e.EventID = string(ids[:n])
	e.TraceID = e.EventID[:32]
	e.SpanID = e.EventID[32:n]
	if p := span.ParentSpanID(); !p.IsEmpty() {
		e.ParentSpanID = hex.EncodeToString(p[:])
	}
	start, end := span.StartTimestamp(), span.EndTimestamp()
	if start != 0 {
		e.Time = start.AsTime().UTC()
	} else {
		e.Time = m.o.ReceivedAt
	}
	if end > start && start != 0 {
		e.DurationNs = uint64(end - start)
	}

	var s scratch
	m.applyAttrs(e, &s, span.Attributes())

	// Observer: attribute, else resource, else span kind.
	e.Observer = s.observer
	if e.Observer == "" {
		e.Observer = res.observer
	}
	if e.Observer == "" {
		switch span.Kind() {
		case ptrace.SpanKindServer:
			e.Observer = ObserverServer
		case ptrace.SpanKindClient:
			e.Observer = ObserverClient
		case ptrace.SpanKindInternal, ptrace.SpanKindUnspecified:
			// OpenLLMetry for Python records its request spans (which wrap
			// the sender's send_request) as INTERNAL: the sender is the client.
			switch {
			case shape == shapeTLTool && strings.HasSuffix(s.tlWorkflow, ".mcp"):
				// The FastMCP server instrumentation's tool span.
				e.Observer = ObserverServer
			case shape == shapeTLMethod || shape == shapeTLTool:
				e.Observer = ObserverClient
			default:
				e.Observer = ObserverUnknown
			}
		default:
			e.Observer = ObserverUnknown
		}
	}

	name := span.Name()
	switch shape {
	case shapeExecTool, shapeToolAlias:
		if e.Method == "" {
			e.Method = "tools/call"
		}
	case shapeGatewayName:
		if e.Method == "" {
			e.Method = gatewaySpanMethods[name]
		}
	case shapeTLMethod:
		if e.Method == "" {
			e.Method = name[:len(name)-len(".mcp")]
		}
	case shapeTLTool:
		if e.Method == "" {
			e.Method = "tools/call"
		}
		if e.ToolName == "" {
			if s.tlName != "" {
				e.ToolName = s.tlName
			} else {
				e.ToolName = name[:len(name)-len(".tool")]
			}
		}
	}
	// Semconv span name "{method} {target}": the target names the tool or prompt.
	if shape == shapeSemconv || shape == shapeExecTool {
		// Also "MCP send {method} {target}" (the MCP Python SDK's client spans).
		if i := strings.Index(name, e.Method+" "); e.Method != "" && i >= 0 {
			target := name[i+len(e.Method)+1:]
			switch e.Method {
			case "tools/call":
				if e.ToolName == "" {
					e.ToolName = target
				}
			case "prompts/get":
				if e.PromptName == "" {
					e.PromptName = target
				}
			}
		}
	}

	if e.ServerName == "" && len(s.tlWorkflow) > len(".mcp") && strings.HasSuffix(s.tlWorkflow, ".mcp") {
		e.ServerName = strings.TrimSuffix(s.tlWorkflow, ".mcp")
	}
	var defs []toolDef
	if s.hasTraceloop {
		defs = m.traceloop(e, &s)
	}

	// Outcome: status, exceptions, error.type, isError, gateway decision.
	if span.Status().Code() == ptrace.StatusCodeError {
		e.Outcome = OutcomeError
		if e.ErrorType == "" || e.StatusCode == 0 {
			excType := exceptionType(span)
			if e.ErrorType == "" {
				e.ErrorType = excType
			}
			if e.StatusCode == 0 {
				if n, err := strconv.ParseInt(excType, 10, 32); err == nil {
					e.StatusCode = int32(n)
				}
			}
		}
		if e.ErrorType == "" && e.StatusCode == 0 {
			// "MCP error -32602: ..." (the MCP SDKs' McpError message).
			if n, ok := mcpErrorCode(span.Status().Message()); ok {
				e.StatusCode = n
				e.ErrorType = strconv.Itoa(int(n))
			}
		}
		if e.ErrorType == "" {
			e.ErrorType = "_OTHER"
		}
	}
	if e.StatusCode == 0 && e.ErrorType != "" {
		if n, err := strconv.ParseInt(e.ErrorType, 10, 32); err == nil {
			e.StatusCode = int32(n)
		}
	}
	m.finishOutcome(e, &s)
	m.finishSession(e)

	if s.toolDefs != "" {
		parsed, ok := parseToolDefinitions(s.toolDefs)
		if !ok {
			m.drop(DropInvalidToolDefs)
		}
		defs = append(defs, parsed...)
	}
	if len(defs) > 0 {
		msg := *e // emitToolDefs appends to m.b.Events: e may move
		m.emitToolDefs(&msg, defs)
	}
}

func (m *mapper) finishOutcome(e *Event, s *scratch) {
	if s.isError || e.ErrorType == "tool_error" {
		e.Outcome = OutcomeToolError
		if e.ErrorType == "" {
			e.ErrorType = "tool_error"
		}
	}
	if isDenied(s.decision) {
		e.Outcome = OutcomeDenied
	}
}

// finishSession derives SessionKey: session id, else conversation id, else
// trace id, else user@client.
func (m *mapper) finishSession(e *Event) {
	switch {
	case e.SessionID != "":
		e.SessionKey = e.SessionID
	case e.ConversationID != "":
		e.SessionKey = e.ConversationID
	case e.TraceID != "":
		e.SessionKey = e.TraceID
	case e.UserID != "" || e.ClientName != "":
		e.SessionKey = e.UserID + "@" + e.ClientName
	}
}

// exceptionType returns exception.type of the span's first exception event.
func exceptionType(span ptrace.Span) string {
	evs := span.Events()
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		if ev.Name() != "exception" {
			continue
		}
		if v, ok := ev.Attributes().Get("exception.type"); ok {
			return short(v)
		}
	}
	return ""
}

// emitToolDefs appends one KindToolDefinition event per definition, carrying
// the context of the message event e that advertised them.
func (m *mapper) emitToolDefs(e *Event, defs []toolDef) {
	for _, d := range defs {
		if d.Name == "" {
			m.drop(DropToolDefNoName)
			continue
		}
		td := Event{
			EventID:         e.EventID + "-" + shortHash(d.Name),
			Tenant:          e.Tenant,
			Kind:            KindToolDefinition,
			Time:            e.Time,
			Source:          e.Source,
			Observer:        e.Observer,
			TraceID:         e.TraceID,
			SpanID:          e.SpanID,
			ParentSpanID:    e.ParentSpanID,
			ServiceName:     e.ServiceName,
			ServiceInstance: e.ServiceInstance,
			HostName:        e.HostName,
			Method:          "tools/list",
			ProtocolVersion: e.ProtocolVersion,
			Transport:       e.Transport,
			SessionID:       e.SessionID,
			RequestID:       e.RequestID,
			ConversationID:  e.ConversationID,
			SessionKey:      e.SessionKey,
			AgentID:         e.AgentID,
			AgentName:       e.AgentName,
			UserID:          e.UserID,
			ClientName:      e.ClientName,
			ClientVersion:   e.ClientVersion,
			ClientAddress:   e.ClientAddress,
			UserAgent:       e.UserAgent,
			ServerName:      e.ServerName,
			ServerVersion:   e.ServerVersion,
			ServerAddress:   e.ServerAddress,
			ServerPort:      e.ServerPort,
			ToolName:        d.Name,
			Outcome:         OutcomeOK,
			IngestedAt:      e.IngestedAt,
		}
		d.fill(&td)
		m.b.Events = append(m.b.Events, td)
	}
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// log maps one log record.
func (m *mapper) log(res *resInfo, resource pcommon.Resource, lr plog.LogRecord) {
	name := lr.EventName()
	if name == "" {
		if v, ok := lr.Attributes().Get("event.name"); ok {
			name = v.Str()
		}
	}
	if name != LogEventAudit && name != LogEventToolsSnapshot {
		m.drop(DropNotMCP)
		return
	}
	e := Event{
		EventID:         logEventID(lr, resource),
		Tenant:          res.tenant,
		Kind:            KindMessage,
		Source:          SourceLog,
		ServiceName:     res.serviceName,
		ServiceInstance: res.serviceInstance,
		HostName:        res.hostName,
		IngestedAt:      m.o.ReceivedAt,
		Outcome:         OutcomeOK,
	}
	switch {
	case lr.Timestamp() != 0:
		e.Time = lr.Timestamp().AsTime().UTC()
	case lr.ObservedTimestamp() != 0:
		e.Time = lr.ObservedTimestamp().AsTime().UTC()
	default:
		e.Time = m.o.ReceivedAt
	}
	if t := lr.TraceID(); !t.IsEmpty() {
		e.TraceID = hex.EncodeToString(t[:])
	}
	if sp := lr.SpanID(); !sp.IsEmpty() {
		e.SpanID = hex.EncodeToString(sp[:])
	}
	var s scratch
	m.applyAttrs(&e, &s, lr.Attributes())
	e.Observer = s.observer
	if e.Observer == "" {
		e.Observer = res.observer
	}
	if e.Observer == "" {
		e.Observer = ObserverUnknown
	}
	m.finishSession(&e)

	if name == LogEventToolsSnapshot {
		d := toolDefFromBody(lr.Body())
		// Attributes win over the body.
		if e.ToolName != "" {
			d.Name = e.ToolName
		}
		if e.ToolDescription != "" {
			d.Description, d.hasDescription = e.ToolDescription, true
		}
		if e.ToolInputSchema != "" {
			d.InputSchema = e.ToolInputSchema
		}
		if e.ToolAnnotations != "" {
			d.Annotations = e.ToolAnnotations
		}
		if d.Name == "" {
			m.drop(DropToolDefNoName)
			return
		}
		e.Kind = KindToolDefinition
		if e.Method == "" {
			e.Method = "tools/list"
		}
		e.ToolName = d.Name
		d.fill(&e)
		m.b.Events = append(m.b.Events, e)
		return
	}

	if e.StatusCode == 0 && e.ErrorType != "" {
		if n, err := strconv.ParseInt(e.ErrorType, 10, 32); err == nil {
			e.StatusCode = int32(n)
		}
	}
	if e.ErrorType != "" && e.ErrorType != "tool_error" {
		e.Outcome = OutcomeError
	}
	if lr.SeverityNumber() >= plog.SeverityNumberError && e.Outcome == OutcomeOK && e.ErrorType != "" {
		e.Outcome = OutcomeError
	}
	m.finishOutcome(&e, &s)
	if e.Method == "" {
		if e.ToolName != "" {
			e.Method = "tools/call"
		} else {
			m.drop(DropNotMCP)
			return
		}
	}
	var defs []toolDef
	if s.toolDefs != "" {
		parsed, ok := parseToolDefinitions(s.toolDefs)
		if !ok {
			m.drop(DropInvalidToolDefs)
		}
		defs = parsed
	}
	m.b.Events = append(m.b.Events, e)
	m.emitToolDefs(&e, defs)
}

// propagate fills server and client identity learnt from an initialize
// exchange (OpenLLMetry puts it only in initialize's output and input) into
// the other events of the same session within this request. "Same session"
// is, in order: the same session id; else the same trace and parent span
// (the JS instrumentation's mcp.client.session span parents every request);
// else, for root spans (the Python instrumentation starts a new trace per
// request), the same service.name + service.instance.id. A key that saw two
// different identities in the batch is ambiguous and propagates nothing.
func (m *mapper) propagate() {
	if m.childRequestIDs != nil {
		for i := range m.b.Events {
			e := &m.b.Events[i]
			if e.RequestID != "" || e.Source != SourceSpan {
				continue
			}
			if sid, ok := spanIDFromHex(e.SpanID); ok {
				e.RequestID = m.childRequestIDs[sid]
			}
		}
	}
	type ident struct {
		serverName, serverVersion, clientName, clientVersion, protocol string
		ambiguous                                                      bool
	}
	var byKey map[string]*ident
	key := func(e *Event) string {
		switch {
		case e.SessionID != "":
			return "s:" + e.SessionID
		case e.TraceID != "" && e.ParentSpanID != "":
			return "t:" + e.TraceID + "/" + e.ParentSpanID
		case e.Source == SourceSpan && (e.ServiceName != "" || e.ServiceInstance != ""):
			return "r:" + e.Tenant + "/" + e.ServiceName + "/" + e.ServiceInstance
		}
		return ""
	}
	for i := range m.b.Events {
		e := &m.b.Events[i]
		if e.Method != "initialize" || (e.ServerName == "" && e.ClientName == "") {
			continue
		}
		k := key(e)
		if k == "" {
			continue
		}
		if byKey == nil {
			byKey = make(map[string]*ident)
		}
		n := &ident{serverName: e.ServerName, serverVersion: e.ServerVersion, clientName: e.ClientName,
			clientVersion: e.ClientVersion, protocol: e.ProtocolVersion}
		if old, ok := byKey[k]; ok && (old.serverName != n.serverName || old.clientName != n.clientName) {
			old.ambiguous = true
			continue
		}
		byKey[k] = n
	}
	if byKey == nil {
		return
	}
	for i := range m.b.Events {
		e := &m.b.Events[i]
		id := byKey[key(e)]
		if id == nil || id.ambiguous {
			continue
		}
		if e.ServerName == "" {
			e.ServerName, e.ServerVersion = id.serverName, id.serverVersion
		}
		if e.ClientName == "" {
			e.ClientName, e.ClientVersion = id.clientName, id.clientVersion
		}
		if e.ProtocolVersion == "" {
			e.ProtocolVersion = id.protocol
		}
		if e.SessionKey == e.UserID+"@" || e.SessionKey == "" {
			m.finishSession(e)
		}
	}
}

func clampU32(n int) uint32 {
	if n > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(n)
}

// mcpErrorCode reads the JSON-RPC code from an MCP SDK error message
// ("MCP error -32602: Tool x not found").
func mcpErrorCode(msg string) (int32, bool) {
	const prefix = "MCP error "
	if !strings.HasPrefix(msg, prefix) {
		return 0, false
	}
	rest := msg[len(prefix):]
	end := strings.IndexByte(rest, ':')
	if end < 0 {
		end = len(rest)
	}
	n, err := strconv.ParseInt(rest[:end], 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}
