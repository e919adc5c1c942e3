package event

import (
	"fmt"
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The synthetic requests of the golden files and the differential tests.

// numKinds is the number of value kinds putKind writes.
const numKinds = 11

// putKind sets attribute k from s as value kind typ: every OTLP value type,
// and numbers and strings the alias table reads specially.
func putKind(a pcommon.Map, k string, typ int, s string) {
	switch typ {
	case 0:
		a.PutStr(k, s)
	case 1:
		a.PutInt(k, int64(len(s))*1_700_000_000%100000-7)
	case 2:
		a.PutDouble(k, float64(len(s))+0.5)
	case 3:
		a.PutBool(k, len(s)%2 == 0)
	case 4:
		a.PutEmptyBytes(k).FromRaw([]byte(s))
	case 5:
		a.PutEmpty(k)
	case 6:
		a.PutEmptySlice(k).AppendEmpty().SetStr(s)
	case 7:
		a.PutEmptyMap(k).PutStr("v", s)
	case 8:
		a.PutDouble(k, 8443)
	case 9:
		a.PutStr(k, " 443 ")
	case 10:
		a.PutDouble(k, math.Inf(1))
	}
}

// syntheticTraces are requests exercising the mapping's corners.
func syntheticTraces() map[string]ptrace.Traces {
	out := map[string]ptrace.Traces{}
	vals := map[field]string{fTokenExpires: "2026-11-22T03:00:00Z", fScopes: "read write,admin", fIsError: "true",
		fDecision: "deny", fObserver: "gateway", fStatusCode: "-32602", fToolInputSchema: `{"b":1,"a":2}`,
		fToolDefinitions: `[{"name":"x","inputSchema":{"type":"object"}}]`, fServerPort: "8080"}
	for typ := 0; typ < numKinds; typ++ {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		putKind(rs.Resource().Attributes(), "service.name", typ, "svc")
		putKind(rs.Resource().Attributes(), "mcpwatch.tenant", typ, "res-tenant")
		putKind(rs.Resource().Attributes(), "mcpwatch.observer", typ, "client")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("test")
		for i, a := range attributeTable {
			sp := ss.Spans().AppendEmpty()
			sp.SetName("tools/call some_tool")
			sp.SetKind(ptrace.SpanKind(i % 6))
			sp.SetTraceID(pcommon.TraceID{1, byte(i), byte(typ), 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			if i%7 != 0 {
				sp.SetSpanID(pcommon.SpanID{0xa, byte(i), 0xc, 0xd, 1, 2, 3, 4})
			}
			if i%3 == 0 {
				sp.SetParentSpanID(pcommon.SpanID{9, byte(i), 9, 9, 9, 9, 9, 9})
			}
			sp.SetStartTimestamp(pcommon.Timestamp(1_800_000_000_000_000_000 + int64(i)))
			sp.SetEndTimestamp(pcommon.Timestamp(1_800_000_000_250_000_000 - int64(i%2)*1_000_000_000_000_000))
			attrs := sp.Attributes()
			if a.Field != fMethod {
				attrs.PutStr("mcp.method.name", "tools/call")
			}
			v, ok := vals[a.Field]
			if !ok {
				v = fmt.Sprintf("value-%d-%s", i, a.Key)
			}
			putKind(attrs, a.Key, typ, v)
			putKind(attrs, "custom.extra", typ, "x")
			putKind(attrs, a.Key, (typ+1)%numKinds, v+"-dup") // a second name for the same field
			if i%4 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("MCP error -32601: no such method")
				if i%8 == 0 {
					ev := sp.Events().AppendEmpty()
					ev.SetName("exception")
					putKind(ev.Attributes(), "exception.type", typ, "ValueError")
				}
			}
		}
		// Not MCP, with the request id of its parent.
		child := ss.Spans().AppendEmpty()
		child.SetName("ResponseStreamWriter")
		child.SetParentSpanID(pcommon.SpanID{0xa, 1, 0xc, 0xd, 1, 2, 3, 4})
		putKind(child.Attributes(), "mcp.request.id", typ, "77")
		// MCP without a trace id.
		noTrace := ss.Spans().AppendEmpty()
		noTrace.Attributes().PutStr("mcp.method.name", "ping")
		out[fmt.Sprintf("table-type%d", typ)] = td
	}

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("opentelemetry.instrumentation.mcp")
	mk := func(name string, kind ptrace.SpanKind, i byte) pcommon.Map {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(name)
		sp.SetKind(kind)
		sp.SetTraceID(pcommon.TraceID{7, i, 1})
		sp.SetSpanID(pcommon.SpanID{7, i, 2})
		sp.SetParentSpanID(pcommon.SpanID{7, 0, 3})
		return sp.Attributes()
	}
	a := mk("initialize.mcp", ptrace.SpanKindInternal, 1)
	a.PutStr("traceloop.entity.input", `{"params":{"protocolVersion":"2025-06-18","clientInfo":{"name":"cli","version":"1"}}}`)
	a.PutStr("traceloop.entity.output", `{"protocolVersion":"2025-06-18","serverInfo":{"name":"srv","version":"2"}}`)
	a = mk("tools/list.mcp", ptrace.SpanKindInternal, 2)
	a.PutStr("traceloop.entity.output", `{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"description":"no name"}]}`)
	a = mk("read_file.tool", ptrace.SpanKindInternal, 3)
	a.PutStr("traceloop.span.kind", "tool")
	a.PutStr("traceloop.workflow.name", "files.mcp")
	a.PutStr("traceloop.entity.input", `{"tool_name":"read_file","arguments":{"path":"/etc/passwd"}}`)
	a.PutStr("traceloop.entity.output", `{"result":"\"hello\"","is_error":true}`)
	a = mk("mcp.client.session", ptrace.SpanKindClient, 4)
	a.PutStr("traceloop.span.kind", "session")
	a = mk("mcp.tool.call", ptrace.SpanKindClient, 5)
	a.PutStr("mcp.server.name", "gw")
	a = mk("tool", ptrace.SpanKindServer, 6)
	a.PutStr("gen_ai.operation.name", "execute_tool")
	a.PutStr("gen_ai.tool.definitions", `not json`)
	for i := 0; i < MaxExtraAttrs+5; i++ {
		a.PutStr(fmt.Sprintf("extra.%03d", i), strings.Repeat("é", MaxExtraValueLen))
	}
	a.PutStr(strings.Repeat("k", 200), "long key")
	out["traceloop-and-gateways"] = td

	fb := ptrace.NewTraces()
	rs = fb.ResourceSpans().AppendEmpty()
	args := rs.Resource().Attributes().PutEmptySlice("process.command_args")
	args.AppendEmpty().SetStr("node")
	args.AppendEmpty().SetStr("server.js")
	rs.Resource().Attributes().PutEmptyMap("service.name").PutInt("odd", 1)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.Attributes().PutStr("mcp.method.name", "tools/call")
	sp.Attributes().PutEmptySlice("mcpwatch.scopes").AppendEmpty().SetStr("read")
	m := sp.Attributes().PutEmptyMap("gen_ai.tool.call.arguments")
	m.PutStr("path", "/x")
	m.PutEmptySlice("list").AppendEmpty().SetEmptyMap().PutDouble("f", 1.5)
	sp.Attributes().PutEmptySlice("custom.list").AppendEmpty().SetBool(true)
	sp.Attributes().PutEmptyMap("custom.map")
	out["arrays-and-maps"] = fb
	return out
}

// syntheticLogs covers mapper.log's corners: every attribute-table row
// with every scalar type, bodies of every kind, snapshots, severities,
// ids, and non-MCP records.
func syntheticLogs() map[string]plog.Logs {
	out := map[string]plog.Logs{"sample": sampleLogs(), "deep": deepLogs()}
	vals := map[field]string{fTokenExpires: "1800000000", fScopes: "a b", fIsError: "1", fDecision: "blocked",
		fObserver: "server", fStatusCode: "-32000", fErrorType: "-32601", fToolAnnotations: `{"z":1,"a":[2]}`,
		fToolDefinitions: `[{"name":"t1","description":"d"},{"name":""}]`}
	for typ := 0; typ < numKinds; typ++ {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		putKind(rl.Resource().Attributes(), "service.name", typ, "gw")
		putKind(rl.Resource().Attributes(), "mcpwatch.tenant", typ, "t2")
		putKind(rl.Resource().Attributes(), "zz.first", typ, "z")
		rl.Resource().Attributes().PutStr("aa.dup", "1")
		rl.Resource().Attributes().PutStr("aa.dup", "2")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i, a := range attributeTable {
			lr := lrs.AppendEmpty()
			switch i % 3 {
			case 0:
				lr.SetEventName(LogEventAudit)
			case 1:
				lr.Attributes().PutStr("event.name", LogEventAudit)
			case 2:
				lr.SetEventName(LogEventToolsSnapshot)
			}
			if i%4 != 0 {
				lr.SetTimestamp(pcommon.Timestamp(1_800_000_000_000_000_000 + int64(i)))
			} else if i%8 == 0 {
				lr.SetObservedTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
			}
			if i%5 != 0 {
				lr.SetTraceID(pcommon.TraceID{byte(i), 1})
				lr.SetSpanID(pcommon.SpanID{byte(i), 2})
			}
			lr.SetSeverityNumber(plog.SeverityNumber(i % 25))
			switch i % 6 {
			case 0:
				lr.Body().SetStr(`{"name":"from-body","description":"x","inputSchema":{"type":"object"}}`)
			case 1:
				m := lr.Body().SetEmptyMap()
				m.PutStr("name", "map-body")
				m.PutEmptyMap("inputSchema").PutStr("type", "object")
			case 2:
				lr.Body().SetInt(42)
			case 3:
				lr.Body().SetEmptySlice().AppendEmpty().SetDouble(1.5)
			case 4:
				lr.Body().SetEmptyBytes().FromRaw([]byte{0, 1})
			}
			if a.Field != fMethod && i%7 != 0 {
				lr.Attributes().PutStr("mcp.method.name", "tools/call")
			}
			v, ok := vals[a.Field]
			if !ok {
				v = fmt.Sprintf("v-%d-%s", i, a.Key)
			}
			putKind(lr.Attributes(), a.Key, typ, v)
			putKind(lr.Attributes(), "custom.extra", (typ+i)%numKinds, "x")
			lr.Attributes().PutStr("b.dup", "first")
			lr.Attributes().PutStr("b.dup", "second")
		}
		other := lrs.AppendEmpty()
		other.Body().SetStr("application log")
		out[fmt.Sprintf("table-type%d", typ)] = ld
	}
	return out
}
