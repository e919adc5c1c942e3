package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// MapOptions parameterise one mapping call.
type MapOptions struct {
	// Tenant comes from the sender's credentials. "" means: use the resource
	// attribute mcpwatch.tenant, else "default".
	Tenant string
	// ReceivedAt is the collector's receive time (Event.IngestedAt). Zero means
	// time.Now() at the start of the call.
	ReceivedAt time.Time
	// AgentResourceAttributes names an event's agent when the event has no
	// gen_ai.agent.id: groups of resource attributes, tried in order; the
	// first group whose first attribute is set gives the values of its
	// attributes that are set, joined with "/". nil means
	// DefaultAgentResourceAttributes. See identity.go.
	AgentResourceAttributes [][]string
	// Limits bound what the direct decoders (TracesFromProto,
	// LogsFromProto) walk and allocate before they map anything. The zero
	// value bounds nothing: FromTraces and FromLogs read what pdata already
	// holds.
	Limits DecodeLimits
}

// DecodeLimits let a receiver bound a direct decoder's walk and reserve its
// memory before it is allocated. A decoder that reaches a limit, or is
// refused by Grow or Admit, declines the request (ok=false) having mapped
// nothing; the caller then knows why from its own Grow and Admit.
type DecodeLimits struct {
	// MaxValueDepth is how deep AnyValues may nest (an attribute's value or
	// a log body is level 1; each array or map adds one). The validation
	// walk recurses once per level, so this bounds its stack. 0: no limit.
	MaxValueDepth int
	// Grow is asked before the parse allocates: before a slice of the
	// request's resources, records, span events or attributes grows
	// (bytes: the new backing array's size, an upper bound). false
	// declines. nil: allowed.
	Grow func(bytes int64) bool
	// Admit is told, after the whole request was parsed and validated and
	// before the mapping, how many records (spans or log records) and
	// nested values (array and map elements, which the mapping may
	// materialise) the mapping will hold. false declines. nil: admitted.
	Admit func(records, values int) bool
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
	DropCorrelation     = "correlation"      // no MCP message of its own, only an MCP request id (read for correlation)
	DropInvalidTraceID  = "invalid_trace_id" // an MCP span without a trace id
	DropToolDefNoName   = "tool_definition_without_name"
	DropInvalidToolDefs = "invalid_tool_definitions" // unparsable gen_ai.tool.definitions / tools/list output
	DropUnreadable      = "unreadable"               // FromTraces/FromLogs could not read their own encoding (not reached)
)

// Ignored reports whether a drop reason is not an error of the sender:
// telemetry that is not an MCP message (not_mcp, correlation).
func Ignored(reason string) bool { return reason == DropNotMCP || reason == DropCorrelation }

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

// Log event names mcpwatch maps (docs/event.md).
const (
	LogEventAudit         = "mcp.audit"
	LogEventToolsSnapshot = "mcp.tools.snapshot"
)

// FromTraces maps the MCP spans of an OTLP traces request onto events.
// Non-MCP spans are dropped and counted. It never panics on any input.
// There is one mapping: FromTraces maps the request's protobuf encoding
// with TracesFromProto, which reads every request pdata can encode.
func FromTraces(td ptrace.Traces, o MapOptions) Batch {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err == nil {
		if b, _, ok := TracesFromProtoString(ownedString(body), o); ok {
			return b
		}
	}
	return unreadable(td.SpanCount())
}

// FromLogs maps log records with event.name mcp.audit and mcp.tools.snapshot
// onto events. Other records are dropped and counted. It never panics. Like
// FromTraces it maps the request's protobuf encoding (LogsFromProto).
func FromLogs(ld plog.Logs, o MapOptions) Batch {
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err == nil {
		if b, _, ok := LogsFromProtoString(ownedString(body), o); ok {
			return b
		}
	}
	return unreadable(ld.LogRecordCount())
}

// ownedString is b as a string without a copy; b must never change again.
func ownedString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unreadable is the batch of a request whose protobuf encoding the direct
// mapper declined: not reached for anything pdata encodes (FuzzFromTraces,
// FuzzFromLogs), but never a panic.
func unreadable(n int) Batch {
	if n == 0 {
		return Batch{}
	}
	return Batch{Dropped: n, DropReasons: map[string]int{DropUnreadable: n}}
}

type mapper struct {
	o MapOptions
	b Batch
	// res holds the resources mapped so far (postItem.res indexes it).
	res    []resInfo
	resBuf [2]resInfo
	// post lists the events finishIdentity completes.
	post             []postItem
	nClient, nServer int // client and server message events
	// lacking: a span event's call id is its event id; parented: a span
	// event has a parent (linkCalls is needed only with both).
	lacking, parented bool
	// childRequestIDs: request ids found on non-MCP child spans, by parent.
	childRequestIDs map[pcommon.SpanID]string
	// sessionSpans: OpenLLMetry's mcp.client.session / mcp.server.session
	// spans in the request (hex span id): one MCP session each.
	sessionSpans map[string]bool
	ids          []byte // what idBytes has not handed out yet
}

func newMapper(o MapOptions) *mapper {
	if o.ReceivedAt.IsZero() {
		o.ReceivedAt = time.Now()
	}
	o.ReceivedAt = o.ReceivedAt.UTC()
	m := &mapper{o: o}
	m.res = m.resBuf[:0]
	return m
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
	// agent: the agent chain's resource part (AgentResourceAttributes);
	// server: the server's name when this resource is a server process
	// (service.name unless the SDK default).
	agent, server string
	// serverAgent, gatewayAgent: the marked fallback agents of server and
	// gateway observations, made when first needed.
	serverAgent, gatewayAgent string
}

func (m *mapper) resource(attrs []rawKV) resInfo {
	var r resInfo
	if v, ok := getRaw(attrs, "service.name"); ok {
		r.serviceName = v.short()
		if !isUnknownService(r.serviceName) {
			r.server = r.serviceName
		}
	}
	r.agent = resourceAgent(attrs, m.o.AgentResourceAttributes)
	if v, ok := getRaw(attrs, "service.instance.id"); ok {
		r.serviceInstance = v.short()
	}
	if v, ok := getRaw(attrs, "host.name"); ok {
		r.hostName = v.short()
	}
	if v, ok := getRaw(attrs, "mcpwatch.observer"); ok {
		r.observer = parseObserver(v.short())
	}
	r.tenant = m.o.Tenant
	if r.tenant == "" {
		if v, ok := getRaw(attrs, "mcpwatch.tenant"); ok {
			r.tenant = v.short()
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
func (s *scratch) take(a *alias) bool {
	cur := s.rank[a.Field]
	if cur != 0 && cur <= a.Rank+1 {
		return false
	}
	s.rank[a.Field] = a.Rank + 1
	return true
}

// applyAttrs reads attrs onto e. Unknown attributes become extras.
func (m *mapper) applyAttrs(e *Event, s *scratch, attrs []rawKV) {
	s.attrCount = len(attrs)
	for i := range attrs {
		k, v := attrs[i].key, &attrs[i].v
		a := lookupAlias(k)
		if a == nil {
			switch k {
			case "traceloop.entity.input":
				s.tlInput, s.hasTraceloop = v.str(), true
				continue
			case "traceloop.entity.output":
				s.tlOutput, s.hasTraceloop = v.str(), true
				continue
			case "traceloop.span.kind":
				s.tlSpanKind, s.hasTraceloop = v.short(), true
				continue
			case "traceloop.entity.name":
				s.tlName, s.hasTraceloop = v.short(), true
				continue
			case "traceloop.workflow.name":
				s.tlWorkflow = v.short()
				continue
			}
			addExtra(e, s, k, v)
			continue
		}
		if !s.take(a) {
			continue
		}
		setField(e, s, a.Field, v)
	}
	if s.extrasDropped > 0 {
		e.AttrKeys = append(e.AttrKeys, "mcpwatch.attrs_dropped")
		e.AttrValues = append(e.AttrValues, strconv.Itoa(s.extrasDropped))
	}
}

func addExtra(e *Event, s *scratch, k string, v *rawVal) {
	if len(e.AttrKeys) >= MaxExtraAttrs {
		s.extrasDropped++
		return
	}
	if e.AttrKeys == nil {
		n := min(s.attrCount, MaxExtraAttrs) + 1
		e.AttrKeys, e.AttrValues = make([]string, 0, n), make([]string, 0, n)
	}
	e.AttrKeys = append(e.AttrKeys, truncateUTF8(k, MaxExtraKeyLen))
	e.AttrValues = append(e.AttrValues, truncateUTF8(v.str(), MaxExtraValueLen))
}

// setField sets the field an attribute alias names from its value.
func setField(e *Event, s *scratch, f field, v *rawVal) {
	switch f {
	case fMethod:
		e.Method = v.short()
	case fProtocolVersion:
		e.ProtocolVersion = v.short()
	case fTransport:
		e.Transport = v.short()
	case fSessionID:
		e.SessionID = v.short()
	case fRequestID:
		e.RequestID = v.short()
	case fConversationID:
		e.ConversationID = v.short()
	case fAgentID:
		e.AgentID = v.short()
	case fAgentName:
		e.AgentName = v.short()
	case fUserID:
		e.UserID = v.short()
	case fClientName:
		e.ClientName = v.short()
	case fClientVersion:
		e.ClientVersion = v.short()
	case fClientAddress:
		e.ClientAddress = v.short()
	case fUserAgent:
		e.UserAgent = v.short()
	case fServerName:
		e.ServerName = v.short()
	case fServerVersion:
		e.ServerVersion = v.short()
	case fServerAddress:
		e.ServerAddress = v.short()
	case fServerPort:
		if n, ok := v.int(); ok && n >= 0 && n <= 65535 {
			e.ServerPort = uint16(n)
		}
	case fToolName:
		e.ToolName = v.short()
	case fToolCallID:
		e.ToolCallID = v.short()
	case fPromptName:
		e.PromptName = v.short()
	case fResourceURI:
		e.ResourceURI = v.short()
	case fArguments:
		e.Arguments = v.str()
		e.ArgumentsSize = clampU32(len(e.Arguments))
	case fResult:
		e.Result = v.str()
		e.ResultSize = clampU32(len(e.Result))
	case fErrorType:
		e.ErrorType = v.short()
	case fStatusCode:
		if n, ok := v.int(); ok && n >= -1<<31 && n < 1<<31 {
			e.StatusCode = int32(n)
		}
	case fOrigin:
		e.Origin = v.short()
	case fTokenSubject:
		e.TokenSubject = v.short()
	case fTokenAudience:
		e.TokenAudience = v.str()
	case fTokenExpires:
		e.TokenExpires = v.time()
	case fScopes:
		e.Scopes = v.strings()
	case fToolDescription:
		e.ToolDescription = v.str()
	case fToolInputSchema:
		e.ToolInputSchema = canonicalOrRaw(v.str())
	case fToolAnnotations:
		e.ToolAnnotations = canonicalOrRaw(v.str())
	case fObserver:
		s.observer = parseObserver(v.short())
	case fDecision:
		s.decision = v.short()
	case fIsError:
		if v.typ == pcommon.ValueTypeBool {
			s.isError = v.n != 0
		} else {
			s.isError, _ = strconv.ParseBool(v.short())
		}
	case fOperation:
		s.operation = v.short()
	case fToolDefinitions:
		s.toolDefs = v.str()
	case fEventName:
		s.eventName = v.short()
	case fTenant:
		// Only the resource attribute (or the sender) sets the tenant.
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
func classify(scope string, sp *rawSpanRec, attrs []rawKV) spanShape {
	if v, ok := getRaw(attrs, "mcp.method.name"); ok && v.Str() != "" {
		return shapeSemconv
	}
	if v, ok := getRaw(attrs, "mcp.method"); ok && v.Str() != "" {
		return shapeSemconv
	}
	if v, ok := getRaw(attrs, "gen_ai.operation.name"); ok && v.Str() == "execute_tool" {
		return shapeExecTool
	}
	name := sp.name
	if strings.HasSuffix(name, ".mcp") && len(name) > 4 && isTraceloop(scope, attrs) {
		if name == "mcp.client.session" || name == "mcp.server.session" {
			return shapeNone
		}
		return shapeTLMethod
	}
	if strings.HasSuffix(name, ".tool") && len(name) > 5 && isTraceloop(scope, attrs) {
		return shapeTLTool
	}
	if _, ok := getRaw(attrs, "mcp.tool.name"); ok {
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

func isTraceloop(scope string, attrs []rawKV) bool {
	if strings.Contains(scope, "traceloop") || strings.Contains(scope, "instrumentation.mcp") ||
		strings.Contains(scope, "instrumentation-mcp") {
		return true
	}
	if _, ok := getRaw(attrs, "traceloop.span.kind"); ok {
		return true
	}
	if _, ok := getRaw(attrs, "traceloop.entity.input"); ok {
		return true
	}
	_, ok := getRaw(attrs, "traceloop.entity.output")
	return ok
}

// exceptionType returns exception.type of the span's first exception event.
func (p *rawTraces) exceptionType(sp *rawSpanRec) string {
	for _, ev := range p.evs[sp.events.lo:sp.events.hi] {
		if ev.name != "exception" {
			continue
		}
		if v, ok := getRaw(p.kvs[ev.attrs.lo:ev.attrs.hi], "exception.type"); ok {
			return v.short()
		}
	}
	return ""
}

func isZero8(b *[8]byte) bool { return *b == [8]byte{} }

// idBytes returns 144 bytes for a span event's id strings: trace, span
// and parent span id in hex, then room for most call ids (spanCallID).
func (m *mapper) idBytes() []byte { return m.carve(144) }

// carve returns n bytes for strings of span events, carved from chunks of
// about 64 events' ids and call ids: an allocation per chunk, not per
// event (a retained event keeps its chunk alive).
func (m *mapper) carve(n int) []byte {
	const chunk = 64 * 144
	if len(m.ids) < n {
		m.ids = make([]byte, max(n, chunk))
	}
	b := m.ids[:n:n]
	m.ids = m.ids[n:]
	return b
}

// hexPairs holds every byte's two lowercase hex digits.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{hexDigits[i>>4], hexDigits[i&0xf]}
	}
	return t
}()

// encodeHex is hex.Encode with a digit pair per byte (a third of its
// instructions).
func encodeHex(dst, src []byte) {
	_ = dst[2*len(src)-1]
	for i, c := range src {
		dst[2*i], dst[2*i+1] = hexPairs[c][0], hexPairs[c][1]
	}
}

// span maps one span.
func (m *mapper) span(p *rawTraces, res *resInfo, sp *rawSpanRec) {
	attrs := p.kvs[sp.attrs.lo:sp.attrs.hi]
	shape := classify(sp.scope, sp, attrs)
	if shape == shapeNone {
		v, ok := getRaw(attrs, "mcp.request.id")
		if !ok {
			if (sp.name == "mcp.client.session" || sp.name == "mcp.server.session") && isTraceloop(sp.scope, attrs) {
				if m.sessionSpans == nil {
					m.sessionSpans = make(map[string]bool)
				}
				m.sessionSpans[hex.EncodeToString(sp.sid[:])] = true
			}
			m.drop(DropNotMCP)
			return
		}
		// OpenLLMetry Python's ResponseStreamWriter spans: no MCP message
		// of their own, but the request id of their parent's.
		m.drop(DropCorrelation)
		if !isZero8(&sp.psid) {
			if m.childRequestIDs == nil {
				m.childRequestIDs = make(map[pcommon.SpanID]string)
			}
			m.childRequestIDs[pcommon.SpanID(sp.psid)] = v.short()
		}
		return
	}
	if sp.tid == [16]byte{} {
		m.drop(DropInvalidTraceID)
		return
	}
	// The slice beyond its length is zero (fresh, or cleared by
	// Batch.Release; nothing cuts it back), so the event needs no zeroing.
	if n := len(m.b.Events); n < cap(m.b.Events) {
		m.b.Events = m.b.Events[:n+1]
	} else {
		m.b.Events = append(m.b.Events, Event{})
	}
	e := &m.b.Events[len(m.b.Events)-1]
	e.Tenant = res.tenant
	e.Kind = KindMessage
	e.Source = SourceSpan
	e.ServiceName = res.serviceName
	e.ServiceInstance = res.serviceInstance
	e.HostName = res.hostName
	e.IngestedAt = m.o.ReceivedAt
	e.Outcome = OutcomeOK
	// The event id is the trace id then the span id, in hex; the parent
	// span id follows them in the same bytes.
	// ids: trace id, span id, parent span id, in hex.
	ids := m.idBytes()
	encodeHex(ids[:32], sp.tid[:])
	n := 32
	if !isZero8(&sp.sid) {
		encodeHex(ids[32:48], sp.sid[:])
		n = 48
	}
	e.EventID = ownedString(ids[:n])
	e.TraceID = e.EventID[:32]
	e.SpanID = e.EventID[32:]
	if !isZero8(&sp.psid) {
		encodeHex(ids[48:64], sp.psid[:])
		e.ParentSpanID = ownedString(ids[48:64])
		m.parented = true
	}
	start, end := pcommon.Timestamp(sp.start), pcommon.Timestamp(sp.end)
	if start != 0 {
		e.Time = start.AsTime().UTC()
	} else {
		e.Time = m.o.ReceivedAt
	}
	if end > start && start != 0 {
		e.DurationNs = uint64(end - start)
	}

	var s scratch
	m.applyAttrs(e, &s, attrs)

	e.Observer = s.observer
	if e.Observer == "" {
		e.Observer = res.observer
	}
	if e.Observer == "" {
		switch ptrace.SpanKind(sp.kind) {
		case ptrace.SpanKindServer:
			e.Observer = ObserverServer
		case ptrace.SpanKindClient:
			e.Observer = ObserverClient
		case ptrace.SpanKindInternal, ptrace.SpanKindUnspecified:
			switch {
			case shape == shapeTLTool && strings.HasSuffix(s.tlWorkflow, ".mcp"):
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

	name := sp.name
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
	if shape == shapeSemconv || shape == shapeExecTool {
		if i := indexWord(name, e.Method); e.Method != "" && i >= 0 {
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
	if hasCallKey(e) {
		e.CallID = m.spanCallID(e, ids)
	} else {
		e.CallID = e.EventID
		m.lacking = true
	}
	// fastmcp's own CLIENT span wraps the MCP SDK's "MCP send" span of
	// the same request (which has the request id): a second client
	// observation of one call.
	if ptrace.SpanKind(sp.kind) == ptrace.SpanKindClient && e.RequestID == "" && strings.HasPrefix(sp.scope, "fastmcp") {
		e.Tags = append(e.Tags, TagDuplicate)
	}
	var defs []toolDef
	if s.hasTraceloop {
		defs = m.traceloop(e, &s)
	}

	if ptrace.StatusCode(sp.statusCode) == ptrace.StatusCodeError {
		e.Outcome = OutcomeError
		if e.ErrorType == "" || e.StatusCode == 0 {
			excType := p.exceptionType(sp)
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
			if n, ok := mcpErrorCode(sp.statusMsg); ok {
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
	m.observed(e, res)

	if s.toolDefs != "" {
		parsed, ok := parseToolDefinitions(s.toolDefs)
		if !ok {
			m.drop(DropInvalidToolDefs)
		}
		defs = append(defs, parsed...)
	}
	if len(defs) > 0 {
		msg := *e
		m.emitToolDefs(&msg, defs)
	}
}

// spanCallID is putCallID for a span event (hasCallKey) whose trace,
// span and parent span ids are hex in ids (idBytes): the ids are moved as
// fixed-size arrays, into the room idBytes left (this runs for nearly
// every span).
func (m *mapper) spanCallID(e *Event, ids []byte) string {
	if len(e.RequestID) > maxCallRequestID {
		b := m.carve(callIDLen(e))
		putCallID(b, e)
		return ownedString(b)
	}
	n := 32 + 16 + 1 + len(e.Method) + 1 + len(e.RequestID)
	var b []byte
	if n <= len(ids)-64 {
		b = ids[64 : 64+n : 64+n] // room idBytes left after the ids
	} else {
		b = m.carve(n)
	}
	if e.Observer == ObserverServer || e.Observer == ObserverGateway {
		*(*[32]byte)(b) = [32]byte(ids[:32])
		*(*[16]byte)(b[32:]) = [16]byte(ids[48:64]) // the parent: the client span
	} else {
		*(*[48]byte)(b) = [48]byte(ids[:48]) // the event id
	}
	b[48] = ':'
	k := 49 + copy(b[49:], e.Method)
	b[k] = ':'
	copy(b[k+1:], e.RequestID)
	return ownedString(b)
}

// indexWord is strings.Index(s, w+" ") without building w+" ".
func indexWord(s, w string) int {
	if w == "" {
		return strings.IndexByte(s, ' ')
	}
	for i := 0; ; i++ {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return -1
		}
		i += j
		if i+len(w) < len(s) && s[i+len(w)] == ' ' {
			return i
		}
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

// emitToolDefs appends one KindToolDefinition event per definition, carrying
// the context of the message event e that advertised them.
func (m *mapper) emitToolDefs(e *Event, defs []toolDef) {
	post := len(m.post) > 0 && int(m.post[len(m.post)-1].i) == len(m.b.Events)-1
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
			CallID:          e.CallID,
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
		if post {
			m.post = append(m.post, postItem{int32(len(m.b.Events) - 1), m.post[len(m.post)-1].res})
		}
	}
}

// observed finishes the identity of the message event e just appended
// (the last of m.b.Events) as far as one event can tell, and counts it.
func (m *mapper) observed(e *Event, res *resInfo) {
	switch {
	case agentSide(e):
		m.nClient++
		if e.AgentID == "" {
			e.AgentID = res.agent
		}
	case serverSide(e):
		m.nServer++
		// A server observation that names no server: its own resource
		// names it (an initialize in the request may still override it).
		if e.ServerName == "" {
			e.ServerName = res.server
		}
	case e.Observer == ObserverGateway:
	default:
		if e.AgentID == "" {
			e.AgentID = res.agent
		}
	}
	if e.AgentID == "" {
		m.deferIdentity(int32(len(m.res) - 1))
	}
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// rawHashValue hashes v as hashValue hashes its pdata value.
func rawHashValue(h hash.Hash, v *rawVal, depth int) {
	switch v.typ {
	case pcommon.ValueTypeStr, pcommon.ValueTypeInt:
		h.Write([]byte{byte(v.typ)})
		if depth > maxValueDepth {
			return
		}
		hashString(h, v.str())
	default:
		hashValue(h, v.pv(), depth)
	}
}

// rawHashMap is hashMap over kvs (a key's first value, for every key in
// sorted order, duplicates included, as pcommon.Map.Get and Range give).
func (p *rawLogs) rawHashMap(h hash.Hash, kvs []rawKV, depth int) {
	keys := p.keys[:0]
	for i := range kvs {
		keys = append(keys, kvs[i].key)
	}
	sort.Strings(keys)
	h.Write([]byte{'{'})
	for _, k := range keys {
		v, _ := getRaw(kvs, k)
		hashString(h, k)
		rawHashValue(h, v, depth+1)
	}
	h.Write([]byte{'}'})
	p.keys = keys[:0]
}

// logEventID is the deterministic id of a log record: the first 32 hex of
// SHA-256 over its time, trace and span id, severity, event name, body,
// attributes (sorted by key) and resource attributes (sorted by key). The
// observed timestamp is left out: pipelines rewrite it on replay.
func (p *rawLogs) logEventID(lr *rawLogRec, resAttrs []rawKV) string {
	h := sha256.New()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], lr.time)
	h.Write(buf[:])
	h.Write(lr.tid[:])
	h.Write(lr.sid[:])
	binary.BigEndian.PutUint64(buf[:], uint64(int64(lr.severity)))
	h.Write(buf[:])
	hashString(h, lr.eventName)
	rawHashValue(h, &lr.body, 0)
	p.rawHashMap(h, p.kvs[lr.attrs.lo:lr.attrs.hi], 0)
	p.rawHashMap(h, resAttrs, 0)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return hex.EncodeToString(sum[:16])
}

// log maps one log record.
func (m *mapper) log(p *rawLogs, res *resInfo, resAttrs []rawKV, lr *rawLogRec) {
	attrs := p.kvs[lr.attrs.lo:lr.attrs.hi]
	name := lr.eventName
	if name == "" {
		if v, ok := getRaw(attrs, "event.name"); ok {
			name = v.Str()
		}
	}
	if name != LogEventAudit && name != LogEventToolsSnapshot {
		m.drop(DropNotMCP)
		return
	}
	e := Event{
		EventID:         p.logEventID(lr, resAttrs),
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
	case lr.time != 0:
		e.Time = pcommon.Timestamp(lr.time).AsTime().UTC()
	case lr.observed != 0:
		e.Time = pcommon.Timestamp(lr.observed).AsTime().UTC()
	default:
		e.Time = m.o.ReceivedAt
	}
	if lr.tid != [16]byte{} {
		e.TraceID = hex.EncodeToString(lr.tid[:])
	}
	if lr.sid != [8]byte{} {
		e.SpanID = hex.EncodeToString(lr.sid[:])
	}
	var s scratch
	m.applyAttrs(&e, &s, attrs)
	e.Observer = s.observer
	if e.Observer == "" {
		e.Observer = res.observer
	}
	if e.Observer == "" {
		e.Observer = ObserverUnknown
	}
	m.finishSession(&e)

	if name == LogEventToolsSnapshot {
		var d toolDef
		switch lr.body.typ {
		case pcommon.ValueTypeStr, pcommon.ValueTypeMap:
			d = toolDefFromBody(lr.body.pv())
		}
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
		setCallID(&e)
		m.b.Events = append(m.b.Events, e)
		m.observed(&m.b.Events[len(m.b.Events)-1], res)
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
	if plog.SeverityNumber(lr.severity) >= plog.SeverityNumberError && e.Outcome == OutcomeOK && e.ErrorType != "" {
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
	setCallID(&e)
	m.b.Events = append(m.b.Events, e)
	m.observed(&m.b.Events[len(m.b.Events)-1], res)
	m.emitToolDefs(&m.b.Events[len(m.b.Events)-1], defs)
}

// propagate fills server and client identity learnt from an initialize
// exchange (OpenLLMetry puts it only in initialize's output and input) into
// the other events of the same session within this request. "Same session"
// is, in order: the same session id; else the same OpenLLMetry session
// span as parent (the JS instrumentation's mcp.client.session span parents
// every request of one session), when that span is in the request; else,
// for root spans (the Python instrumentation starts a new trace per
// request), the same service.name + service.instance.id. Any other parent
// (an application span over several sessions) tells no session. A key that
// saw two different identities in the batch is ambiguous and propagates
// nothing.
func (m *mapper) propagate() {
	if m.childRequestIDs != nil {
		for i := range m.b.Events {
			e := &m.b.Events[i]
			if e.RequestID != "" || e.Source != SourceSpan {
				continue
			}
			if sid, ok := spanIDFromHex(e.SpanID); ok {
				e.RequestID = m.childRequestIDs[sid]
				if e.RequestID != "" { // the call id was the fallback
					setCallID(e)
				}
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
			if m.sessionSpans[e.ParentSpanID] {
				return "t:" + e.TraceID + "/" + e.ParentSpanID
			}
			return ""
		case e.Source == SourceSpan && (e.ServiceName != "" || e.ServiceInstance != ""):
			return "r:" + e.Tenant + "/" + e.ServiceName + "/" + e.ServiceInstance
		}
		return ""
	}
	for i := range m.b.Events {
		e := &m.b.Events[i]
		if e.Method != "initialize" && e.Method != "server/discover" || (e.ServerName == "" && e.ClientName == "") {
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
		// A server observation's name from its resource (service.name)
		// gives way to the one the server announced.
		if e.ServerName == "" || serverSide(e) && e.ServerName == e.ServiceName && id.serverName != "" {
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
