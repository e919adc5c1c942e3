package event

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// diffTraces maps the protobuf request body both ways: pdata + FromTraces
// (the oracle) and TracesFromProto. When the direct path accepts the body
// its result must equal the oracle's; it must never accept what pdata
// rejects. It reports whether the direct path took the body.
func diffTraces(t testing.TB, body []byte, o MapOptions) bool {
	t.Helper()
	direct, n, ok := TracesFromProto(body, o)
	req := ptraceotlp.NewExportRequest()
	err := req.UnmarshalProto(body)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("direct path accepted a body pdata rejects (%v)", err)
	}
	td := req.Traces()
	want := FromTraces(td, o)
	if n != td.SpanCount() {
		t.Fatalf("span count %d, pdata %d", n, td.SpanCount())
	}
	if !reflect.DeepEqual(direct, want) {
		if len(direct.Events) != len(want.Events) {
			t.Fatalf("direct path: %d events (dropped %v), pdata: %d (dropped %v)", len(direct.Events), direct.DropReasons, len(want.Events), want.DropReasons)
		}
		for i := range want.Events {
			if !reflect.DeepEqual(direct.Events[i], want.Events[i]) {
				t.Fatalf("event %d differs\n direct %+v\n pdata  %+v", i, direct.Events[i], want.Events[i])
			}
		}
		t.Fatalf("batches differ: direct dropped %d %v, pdata %d %v", direct.Dropped, direct.DropReasons, want.Dropped, want.DropReasons)
	}
	// Hand the slice back: later calls map into recycled slices.
	direct.Release()
	if direct.Events != nil {
		t.Fatal("Release left the events")
	}
	return true
}

func tracesProto(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirectTracesMatchPdata: on every real capture, and on synthetic
// requests covering every attribute-table row with every scalar value
// type, errors with exception events, and traceloop shapes, the direct
// decoder gives exactly FromTraces' batch.
func TestDirectTracesMatchPdata(t *testing.T) {
	opts := []MapOptions{{Tenant: "acme", ReceivedAt: received}, {ReceivedAt: received}}
	direct := 0
	files := captureTraceFiles(t)
	for _, f := range files {
		body := tracesProto(t, loadTraces(t, f))
		for _, o := range opts {
			if diffTraces(t, body, o) {
				direct++
			}
		}
	}
	// Every capture takes the direct path (none needs pdata).
	if direct != 2*len(files) {
		t.Errorf("direct path took only %d of %d capture mappings", direct, 2*len(files))
	}
	for name, td := range syntheticTraces() {
		for _, o := range opts {
			if !diffTraces(t, tracesProto(t, td), o) && !strings.HasPrefix(name, "fallback") {
				t.Errorf("%s: the direct path declined", name)
			}
		}
	}
}

// syntheticTraces are requests exercising the mapping's corners.
func syntheticTraces() map[string]ptrace.Traces {
	out := map[string]ptrace.Traces{}
	put := func(a pcommon.Map, k string, typ int, s string) {
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
			a.PutDouble(k, 8443)
		case 7:
			a.PutStr(k, " 443 ")
		case 8:
			a.PutDouble(k, math.Inf(1))
		}
	}
	vals := map[field]string{fTokenExpires: "2026-11-22T03:00:00Z", fScopes: "read write,admin", fIsError: "true",
		fDecision: "deny", fObserver: "gateway", fStatusCode: "-32602", fToolInputSchema: `{"b":1,"a":2}`,
		fToolDefinitions: `[{"name":"x","inputSchema":{"type":"object"}}]`, fServerPort: "8080"}
	for typ := 0; typ <= 8; typ++ {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		put(rs.Resource().Attributes(), "service.name", typ, "svc")
		put(rs.Resource().Attributes(), "mcpwatch.tenant", typ, "res-tenant")
		put(rs.Resource().Attributes(), "mcpwatch.observer", typ, "client")
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
			put(attrs, a.Key, typ, v)
			put(attrs, "custom.extra", typ, "x")
			put(attrs, a.Key, (typ+1)%9, v+"-dup") // a second name for the same field
			if i%4 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("MCP error -32601: no such method")
				if i%8 == 0 {
					ev := sp.Events().AppendEmpty()
					ev.SetName("exception")
					put(ev.Attributes(), "exception.type", typ, "ValueError")
				}
			}
		}
		// Not MCP, with the request id of its parent.
		child := ss.Spans().AppendEmpty()
		child.SetName("ResponseStreamWriter")
		child.SetParentSpanID(pcommon.SpanID{0xa, 1, 0xc, 0xd, 1, 2, 3, 4})
		put(child.Attributes(), "mcp.request.id", typ, "77")
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

// TestDirectTracesDeclines: malformed and unhandled inputs are declined
// (the caller then uses pdata), never half-mapped.
func TestDirectTracesDeclines(t *testing.T) {
	good := tracesProto(t, syntheticTraces()["traceloop-and-gateways"])
	for name, body := range map[string][]byte{
		"truncated":      good[:len(good)-3],
		"bad wire type":  {0x08, 0x01},
		"field zero":     {0x00},
		"short trace id": tracesProto(t, ptrace.NewTraces()),
		"group":          {0x0b, 0x0c},
	} {
		if name == "short trace id" {
			// resource_spans { scope_spans { span { trace_id: 3 bytes } } }
			body = []byte{0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x0a, 0x03, 1, 2, 3}
		}
		if _, _, ok := TracesFromProto(body, MapOptions{}); ok {
			t.Errorf("%s: accepted", name)
		}
		diffTraces(t, body, MapOptions{ReceivedAt: received})
	}
	// An empty request is a valid one.
	if b, n, ok := TracesFromProto(nil, MapOptions{}); !ok || n != 0 || len(b.Events) != 0 {
		t.Errorf("empty request: ok=%v n=%d events=%d", ok, n, len(b.Events))
	}
}

func FuzzDirectTraces(f *testing.F) {
	seedFiles(f, ".pb")
	// Small seeds (one span each): large ones make minimization crawl.
	for _, td := range syntheticTraces() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				sps := sss.At(j).Spans()
				for k := 0; k < sps.Len(); k += 5 {
					one := ptrace.NewTraces()
					rs := one.ResourceSpans().AppendEmpty()
					rss.At(i).Resource().CopyTo(rs.Resource())
					ss := rs.ScopeSpans().AppendEmpty()
					sss.At(j).Scope().CopyTo(ss.Scope())
					sps.At(k).CopyTo(ss.Spans().AppendEmpty())
					if b, err := ptraceotlp.NewExportRequestFromTraces(one).MarshalProto(); err == nil && len(b) < 2048 {
						f.Add(b)
					}
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		diffTraces(t, data, MapOptions{Tenant: "t", ReceivedAt: received})
	})
}
