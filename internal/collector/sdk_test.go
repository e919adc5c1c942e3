package collector

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// secretArg is an argument carrying a GitHub token and an AWS key; the
// collector must redact both before anything reaches Kafka.
const (
	ghToken   = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123"
	awsKey    = "AKIAIOSFODNN7EXAMPLE"
	secretArg = `{"path":"/home/u/.ssh/id_rsa","token":"` + ghToken + `","aws":"` + awsKey + `"}`
)

func sdkResource() *resource.Resource {
	return resource.NewSchemaless(
		semconv.ServiceName("weather-mcp"),
		attribute.String("mcpwatch.tenant", "evil-tenant-from-resource"), // must lose to the token's tenant
	)
}

// emitSpans sends n MCP tools/call server spans plus one non-MCP span.
func emitSpans(t *testing.T, exp sdktrace.SpanExporter, n int) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(sdkResource()))
	tr := tp.Tracer("mcpwatch-test")
	ctx := context.Background()
	for i := 0; i < n; i++ {
		_, sp := tr.Start(ctx, "tools/call read_file", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			semconv.McpMethodNameKey.String("tools/call"),
			semconv.McpSessionIDKey.String("sess-1"),
			semconv.McpProtocolVersionKey.String("2025-06-18"),
			semconv.GenAIToolNameKey.String("read_file"),
			semconv.GenAIAgentIDKey.String("agent-7"),
			semconv.JSONRPCRequestIDKey.String("42"),
			semconv.GenAIToolCallArgumentsKey.String(secretArg),
			semconv.GenAIToolCallResultKey.String(`{"content":"ok"}`),
		))
		sp.End()
	}
	_, other := tr.Start(ctx, "GET /health") // not MCP: ignored, and no error for the sender
	other.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("exporter could not deliver: %v", err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("tracer provider shutdown: %v", err)
	}
}

func checkToolCalls(t *testing.T, evs []event.Event, n int) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("got %d events in Kafka, want %d", len(evs), n)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		ids[e.EventID] = true
		if e.Tenant != testTenant {
			t.Errorf("tenant %q, want %q (from the token, not the resource attribute)", e.Tenant, testTenant)
		}
		if e.Method != "tools/call" || e.ToolName != "read_file" || e.AgentID != "agent-7" || e.SessionID != "sess-1" {
			t.Errorf("method/tool/agent/session = %q/%q/%q/%q", e.Method, e.ToolName, e.AgentID, e.SessionID)
		}
		if e.ServiceName != "weather-mcp" || e.Source != event.SourceSpan || e.Observer != event.ObserverServer {
			t.Errorf("service/source/observer = %q/%q/%q", e.ServiceName, e.Source, e.Observer)
		}
		if e.TraceID == "" || e.SpanID == "" || e.RequestID != "42" {
			t.Errorf("trace/span/request id = %q/%q/%q", e.TraceID, e.SpanID, e.RequestID)
		}
		if want := testTenant + "/agent:agent-7"; e.PartitionKey() != want {
			t.Errorf("partition key %q, want %q", e.PartitionKey(), want)
		}
		checkRedacted(t, e)
	}
	if len(ids) != n {
		t.Errorf("%d distinct event ids for %d spans", len(ids), n)
	}
}

func checkRedacted(t *testing.T, e event.Event) {
	t.Helper()
	if strings.Contains(e.Arguments, ghToken) || strings.Contains(e.Arguments, awsKey) {
		t.Errorf("secret reached Kafka unredacted: %s", e.Arguments)
	}
	if !strings.Contains(e.Arguments, "[REDACTED:") {
		t.Errorf("arguments carry no redaction marker: %s", e.Arguments)
	}
	if !strings.Contains(strings.Join(e.Tags, ","), "secret:") {
		t.Errorf("no secret:<kind> tag: %v", e.Tags)
	}
	if e.ArgumentsSize != uint32(len(secretArg)) {
		t.Errorf("arguments_size %d, want the original %d", e.ArgumentsSize, len(secretArg))
	}
}

func TestOTelSDKTracesHTTP(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.HTTPAddr()),
		otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(authHeader()), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	emitSpans(t, exp, 25)
	checkToolCalls(t, decodeAll(t, readTopic(t, k.Brokers, testTopic)), 25)
	_, metrics := httpGet(t, "http://"+c.AdminAddr()+"/metrics")
	for _, want := range []string{`mcpwatch_collector_accepted_events_total{signal="traces"} 25`, `mcpwatch_collector_ignored_total{reason="not_mcp"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestOTelSDKTracesGRPC(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(c.GRPCAddr()),
		otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(authHeader()), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		otlptracegrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	emitSpans(t, exp, 30)
	checkToolCalls(t, decodeAll(t, readTopic(t, k.Brokers, testTopic)), 30)
}

func TestOTelSDKAuditLogsHTTP(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	exp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpoint(c.HTTPAddr()),
		otlploghttp.WithInsecure(), otlploghttp.WithHeaders(authHeader()), otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)), sdklog.WithResource(sdkResource()))
	lg := lp.Logger("mcp-gateway")
	now := time.Now()
	for i := 0; i < 10; i++ {
		var r otellog.Record
		r.SetTimestamp(now.Add(time.Duration(i) * time.Millisecond))
		r.SetEventName("mcp.audit")
		r.SetBody(attribute.StringValue("tool call"))
		r.AddAttributes(
			attribute.String("mcp.method.name", "tools/call"),
			attribute.String("gen_ai.tool.name", "read_file"),
			attribute.String("gen_ai.agent.id", "agent-7"),
			attribute.String("mcp.session.id", "sess-1"),
			attribute.String("jsonrpc.request.id", "42"),
			attribute.Int("seq", i),
			attribute.String("gen_ai.tool.call.arguments", secretArg),
		)
		lg.Emit(context.Background(), r)
	}
	var other otellog.Record
	other.SetBody(attribute.StringValue("unrelated log line"))
	lg.Emit(context.Background(), other)
	if err := lp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("log exporter could not deliver: %v", err)
	}
	if err := lp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := decodeAll(t, readTopic(t, k.Brokers, testTopic))
	if len(evs) != 10 {
		t.Fatalf("got %d audit events, want 10", len(evs))
	}
	ids := map[string]bool{}
	for _, e := range evs {
		ids[e.EventID] = true
		if e.Source != event.SourceLog || e.Tenant != testTenant || e.Method != "tools/call" || e.ToolName != "read_file" || e.AgentID != "agent-7" {
			t.Errorf("source/tenant/method/tool/agent = %q/%q/%q/%q/%q", e.Source, e.Tenant, e.Method, e.ToolName, e.AgentID)
		}
		checkRedacted(t, e)
	}
	if len(ids) != 10 {
		t.Errorf("%d distinct event ids for 10 records", len(ids))
	}
}
