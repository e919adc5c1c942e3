package scenario

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// ToTraces converts canonical events to OTLP traces as an instrumented MCP
// client or gateway would export them: one span per message with the OTel
// MCP (mcp.*, jsonrpc.*) and GenAI (gen_ai.*) semantic-convention
// attributes plus mcpwatch's documented names for what the conventions lack
// (mcpwatch.server_name, mcpwatch.token_*, ...; see internal/event/attrs.go).
// Tool definition events become gen_ai.tool.definitions on their tools/list
// span. One resource per (tenant, service): service.name, mcpwatch.tenant.
// event.FromTraces(ToTraces(evs), event.MapOptions{}) returns evs (with
// IngestedAt = the MapOptions' ReceivedAt).
func ToTraces(events []event.Event) ptrace.Traces {
	td := ptrace.NewTraces()
	type resKey struct{ tenant, service string }
	scopes := map[resKey]ptrace.SpanSlice{}
	spanOf := func(e *event.Event) ptrace.SpanSlice {
		k := resKey{e.Tenant, e.ServiceName}
		if ss, ok := scopes[k]; ok {
			return ss
		}
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", e.ServiceName)
		ra.PutStr("mcpwatch.tenant", e.Tenant)
		if e.ServiceInstance != "" {
			ra.PutStr("service.instance.id", e.ServiceInstance)
		}
		if e.HostName != "" {
			ra.PutStr("host.name", e.HostName)
		}
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("github.com/mcpwatch/mcpwatch/internal/scenario")
		scopes[k] = sc.Spans()
		return sc.Spans()
	}
	// Tool definitions, grouped by the span of their tools/list message.
	defs := map[string][]map[string]any{}
	for i := range events {
		e := &events[i]
		if e.Kind != event.KindToolDefinition {
			continue
		}
		d := map[string]any{"type": "function", "name": e.ToolName, "description": e.ToolDescription}
		if e.ToolInputSchema != "" {
			d["parameters"] = json.RawMessage(e.ToolInputSchema)
		}
		if e.ToolAnnotations != "" {
			d["annotations"] = json.RawMessage(e.ToolAnnotations)
		}
		k := e.TraceID + e.SpanID
		defs[k] = append(defs[k], d)
	}
	for i := range events {
		e := &events[i]
		if e.Kind == event.KindToolDefinition {
			continue
		}
		sp := spanOf(e).AppendEmpty()
		fillSpan(sp, e)
		if d, ok := defs[e.TraceID+e.SpanID]; ok {
			b, err := json.Marshal(d)
			if err != nil {
				panic(err)
			}
			sp.Attributes().PutStr("gen_ai.tool.definitions", string(b))
		}
	}
	return td
}

func fillSpan(sp ptrace.Span, e *event.Event) {
	var tid pcommon.TraceID
	var sid, pid pcommon.SpanID
	_, _ = hex.Decode(tid[:], []byte(e.TraceID))
	_, _ = hex.Decode(sid[:], []byte(e.SpanID))
	sp.SetTraceID(tid)
	sp.SetSpanID(sid)
	if e.ParentSpanID != "" {
		_, _ = hex.Decode(pid[:], []byte(e.ParentSpanID))
		sp.SetParentSpanID(pid)
	}
	name := e.Method
	switch {
	case e.ToolName != "":
		name += " " + e.ToolName
	case e.PromptName != "":
		name += " " + e.PromptName
	}
	sp.SetName(name)
	switch e.Observer {
	case event.ObserverServer, event.ObserverGateway:
		sp.SetKind(ptrace.SpanKindServer)
	default:
		sp.SetKind(ptrace.SpanKindClient)
	}
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(e.Time))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(e.Time.Add(time.Duration(e.DurationNs))))
	putAttrs(sp.Attributes(), e)
	if e.Observer == event.ObserverGateway {
		sp.Attributes().PutStr("mcpwatch.observer", "gateway")
	}
	if e.Outcome == event.OutcomeError {
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
}

// putAttrs writes the event's fields as span or log attributes.
func putAttrs(a pcommon.Map, e *event.Event) {
	str := func(k, v string) {
		if v != "" {
			a.PutStr(k, v)
		}
	}
	str("mcp.method.name", e.Method)
	str("mcp.protocol.version", e.ProtocolVersion)
	str("network.transport", e.Transport)
	str("mcp.session.id", e.SessionID)
	str("jsonrpc.request.id", e.RequestID)
	str("gen_ai.conversation.id", e.ConversationID)
	str("gen_ai.agent.id", e.AgentID)
	str("gen_ai.agent.name", e.AgentName)
	str("user.id", e.UserID)
	str("mcpwatch.client_name", e.ClientName)
	str("mcpwatch.client_version", e.ClientVersion)
	str("client.address", e.ClientAddress)
	str("user_agent.original", e.UserAgent)
	str("mcpwatch.server_name", e.ServerName)
	str("mcpwatch.server_version", e.ServerVersion)
	str("server.address", e.ServerAddress)
	if e.ServerPort != 0 {
		a.PutInt("server.port", int64(e.ServerPort))
	}
	str("gen_ai.tool.name", e.ToolName)
	str("gen_ai.tool.call.id", e.ToolCallID)
	str("gen_ai.prompt.name", e.PromptName)
	str("mcp.resource.uri", e.ResourceURI)
	str("gen_ai.tool.call.arguments", e.Arguments)
	str("gen_ai.tool.call.result", e.Result)
	str("http.request.header.origin", e.Origin)
	str("mcpwatch.token_subject", e.TokenSubject)
	str("mcpwatch.token_audience", e.TokenAudience)
	if !e.TokenExpires.IsZero() {
		a.PutInt("mcpwatch.token_expires", e.TokenExpires.Unix())
	}
	if len(e.Scopes) > 0 {
		s := a.PutEmptySlice("mcpwatch.scopes")
		for _, x := range e.Scopes {
			s.AppendEmpty().SetStr(x)
		}
	}
	if e.StatusCode != 0 {
		a.PutInt("rpc.response.status_code", int64(e.StatusCode))
	}
	switch e.Outcome {
	case event.OutcomeError:
		str("error.type", e.ErrorType)
	case event.OutcomeToolError:
		a.PutBool("mcpwatch.is_error", true)
	case event.OutcomeDenied:
		a.PutStr("mcpwatch.decision", "deny")
	}
}

// ToLogs converts canonical events to OTLP logs as a gateway that logs rather
// than traces would export them (docs/event.md, log sources): messages as
// `mcp.audit` records and tool definitions as one `mcp.tools.snapshot` record
// per tool (body: the definition as JSON), with the same attribute names as
// ToTraces plus mcpwatch.observer. event.FromLogs returns the same events
// except for what logs cannot carry: event ids (a hash of the record),
// source "log", no parent span or duration.
func ToLogs(events []event.Event) plog.Logs {
	ld := plog.NewLogs()
	type resKey struct{ tenant, service string }
	scopes := map[resKey]plog.LogRecordSlice{}
	for i := range events {
		e := &events[i]
		k := resKey{e.Tenant, e.ServiceName}
		recs, ok := scopes[k]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			ra := rl.Resource().Attributes()
			ra.PutStr("service.name", e.ServiceName)
			ra.PutStr("mcpwatch.tenant", e.Tenant)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName("github.com/mcpwatch/mcpwatch/internal/scenario")
			recs = sl.LogRecords()
			scopes[k] = recs
		}
		lr := recs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		_, _ = hex.Decode(tid[:], []byte(e.TraceID))
		_, _ = hex.Decode(sid[:], []byte(e.SpanID))
		lr.SetTraceID(tid)
		lr.SetSpanID(sid)
		a := lr.Attributes()
		a.PutStr("mcpwatch.observer", string(e.Observer))
		if e.Kind == event.KindToolDefinition {
			lr.SetEventName("mcp.tools.snapshot")
			d := map[string]any{"name": e.ToolName, "description": e.ToolDescription}
			if e.ToolInputSchema != "" {
				d["inputSchema"] = json.RawMessage(e.ToolInputSchema)
			}
			if e.ToolAnnotations != "" {
				d["annotations"] = json.RawMessage(e.ToolAnnotations)
			}
			b, err := json.Marshal(d)
			if err != nil {
				panic(err)
			}
			lr.Body().SetStr(string(b))
			c := *e
			c.ToolName, c.Arguments, c.Result = "", "", ""
			putAttrs(a, &c)
			continue
		}
		lr.SetEventName("mcp.audit")
		if e.Outcome == event.OutcomeError {
			lr.SetSeverityNumber(plog.SeverityNumberError)
		}
		putAttrs(a, e)
	}
	return ld
}
