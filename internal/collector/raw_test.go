package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// mcpTraces builds n MCP tools/call spans with fresh random trace ids,
// arguments of about argBytes and a result.
func mcpTraces(n, argBytes int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "files-mcp")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("mcpwatch-test")
	pad := strings.Repeat("x", argBytes)
	now := time.Now()
	for i := 0; i < n; i++ {
		sp := ss.Spans().AppendEmpty()
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		_, _ = rand.Read(tid[:])
		_, _ = rand.Read(sid[:])
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName("tools/call read_file")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("mcp.method.name", "tools/call")
		a.PutStr("gen_ai.tool.name", "read_file")
		a.PutStr("mcp.session.id", fmt.Sprintf("sess-%d", i%7))
		a.PutStr("gen_ai.agent.id", fmt.Sprintf("agent-%d", i%5))
		a.PutStr("jsonrpc.request.id", fmt.Sprint(i))
		a.PutStr("gen_ai.tool.call.arguments", `{"path":"/srv/data/file-`+fmt.Sprint(i)+`.txt","pad":"`+pad+`"}`)
		a.PutStr("gen_ai.tool.call.result", `{"content":[{"type":"text","text":"hello"}]}`)
	}
	return td
}

func protoBody(t testing.TB, td ptrace.Traces) []byte {
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

type httpResult struct {
	code   int
	body   []byte
	header http.Header
}

// post sends body to the collector's OTLP/HTTP path.
func post(t testing.TB, c *Collector, path, contentType string, body []byte, hdr map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+c.HTTPAddr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{code: resp.StatusCode, body: b, header: resp.Header}
}

func postTraces(t testing.TB, c *Collector, td ptrace.Traces) httpResult {
	return post(t, c, "/v1/traces", "application/x-protobuf", protoBody(t, td), authHeader())
}

// grpcExport sends td over OTLP/gRPC with the test token.
func grpcExport(t testing.TB, c *Collector, td ptrace.Traces, token string) (ptraceotlp.ExportResponse, error) {
	t.Helper()
	cc, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
}

// spanKeys lists trace_id/span_id of td's spans.
func spanKeys(td ptrace.Traces) []string {
	var out []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sps := sss.At(j).Spans()
			for k := 0; k < sps.Len(); k++ {
				out = append(out, sps.At(k).TraceID().String()+"/"+sps.At(k).SpanID().String())
			}
		}
	}
	return out
}
