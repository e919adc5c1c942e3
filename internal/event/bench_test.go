package event_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

// request500 is a realistic OTLP request: 500 MCP server spans (tools/call
// with arguments and results, every 20th carrying a secret, every 10th a
// tools/list), one resource, a few extra attributes each.
func request500() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "mcp-files")
	ra.PutStr("service.instance.id", "pod-7f9c")
	ra.PutStr("host.name", "node-3")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("mcp-python-sdk")
	spans := ss.Spans()
	spans.EnsureCapacity(500)
	for i := 0; i < 500; i++ {
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		sp.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), 1, 2, 3, 4, 5, 6})
		sp.SetParentSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, byte(i)})
		sp.SetStartTimestamp(pcommon.Timestamp(1_800_000_000_000_000_000 + int64(i)*1_000_000))
		sp.SetEndTimestamp(pcommon.Timestamp(1_800_000_000_000_000_000 + int64(i)*1_000_000 + 2_500_000))
		a := sp.Attributes()
		a.EnsureCapacity(14)
		a.PutStr("mcp.protocol.version", "2025-11-25")
		a.PutStr("mcp.session.id", fmt.Sprintf("sess-%d", i%17))
		a.PutStr("jsonrpc.request.id", fmt.Sprint(i))
		a.PutStr("network.transport", "tcp")
		a.PutStr("client.address", "10.1.2.3")
		a.PutStr("gen_ai.agent.id", fmt.Sprintf("agent-%d", i%5))
		a.PutStr("user.id", "alice@example.com")
		a.PutStr("http.route", "/mcp")
		a.PutInt("process.thread.id", int64(i))
		if i%10 == 9 {
			sp.SetName("tools/list")
			a.PutStr("mcp.method.name", "tools/list")
			a.PutStr("gen_ai.tool.definitions", `[{"name":"read_file","description":"Read a file from disk and return its contents","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}},{"name":"search","description":"Full-text search over the repository","inputSchema":{"type":"object","properties":{"q":{"type":"string"},"limit":{"type":"integer"}}}}]`)
			continue
		}
		sp.SetName("tools/call read_file")
		a.PutStr("mcp.method.name", "tools/call")
		a.PutStr("gen_ai.operation.name", "execute_tool")
		a.PutStr("gen_ai.tool.name", "read_file")
		args := fmt.Sprintf(`{"path":"/srv/app/src/pkg%d/handler.go","encoding":"utf-8","max_lines":400,"context":"explain how the handler validates input and which errors it returns to the caller"}`, i)
		if i%20 == 0 {
			args = `{"url":"https://api.example.com/v1/items","headers":{"Authorization":"Bearer d8e8fca2dc0f896fd7cb4cb0031ba249"},"aws":"AKIA` + `IOSFODNN7EXAMPL2"}`
		}
		a.PutStr("gen_ai.tool.call.arguments", args)
		res := `{"content":[{"type":"text","text":"package handler\n\nimport (\n\t\"errors\"\n\t\"net/http\"\n)\n\n// Handle validates the request and writes the response.\nfunc Handle(w http.ResponseWriter, r *http.Request) {\n\tif r.Method != http.MethodPost {\n\t\thttp.Error(w, \"method not allowed\", http.StatusMethodNotAllowed)\n\t\treturn\n\t}\n\tif err := validate(r); err != nil {\n\t\thttp.Error(w, err.Error(), http.StatusBadRequest)\n\t\treturn\n\t}\n\tw.WriteHeader(http.StatusNoContent)\n}\n\nvar errEmpty = errors.New(\"empty body\")\n"}],"isError":false}`
		a.PutStr("gen_ai.tool.call.result", res)
	}
	return td
}

// BenchmarkMapRedactEncode measures what the collector does per event:
// OTLP → events, redaction, and encoding each event as its own Kafka value.
func BenchmarkMapRedactEncode(b *testing.B) {
	td := request500()
	r, err := redact.New(redact.Config{})
	if err != nil {
		b.Fatal(err)
	}
	o := event.MapOptions{Tenant: "acme"}
	var events, bytes int
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	for b.Loop() {
		batch := event.FromTraces(td, o)
		for i := range batch.Events {
			r.Apply(&batch.Events[i])
			v, err := event.Marshal(batch.Events[i : i+1])
			if err != nil {
				b.Fatal(err)
			}
			bytes += len(v)
		}
		events += len(batch.Events)
	}
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	// Process CPU (user+system, GC included) per event: steadier than wall
	// time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(bytes)/float64(events), "value-bytes/event")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkFromTraces(b *testing.B) {
	td := request500()
	var events int
	b.ReportAllocs()
	for b.Loop() {
		events += len(event.FromTraces(td, event.MapOptions{}).Events)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

func BenchmarkMarshalOne(b *testing.B) {
	evs := event.FromTraces(request500(), event.MapOptions{}).Events
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := event.Marshal(evs[i%len(evs) : i%len(evs)+1]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkUnmarshalOne(b *testing.B) {
	evs := event.FromTraces(request500(), event.MapOptions{}).Events
	vals := make([][]byte, len(evs))
	for i := range evs {
		vals[i], _ = event.Marshal(evs[i : i+1])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := event.Unmarshal(vals[i%len(vals)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTracesFromProto measures the mapping alone on request500's
// protobuf encoding (the collector's path for OTLP protobuf).
func BenchmarkTracesFromProto(b *testing.B) {
	body, err := ptraceotlp.NewExportRequestFromTraces(request500()).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	var spans int
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		batch, n, ok := event.TracesFromProto(body, event.MapOptions{})
		if !ok {
			b.Fatal("declined")
		}
		spans += n
		batch.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
}

// BenchmarkFromTracesJSON measures the collector's OTLP/JSON path: pdata's
// JSON decoding of request500, then FromTraces.
func BenchmarkFromTracesJSON(b *testing.B) {
	body, err := ptraceotlp.NewExportRequestFromTraces(request500()).MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	var events int
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON(body); err != nil {
			b.Fatal(err)
		}
		events += len(event.FromTraces(req.Traces(), event.MapOptions{}).Events)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}
