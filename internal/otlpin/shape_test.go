package otlpin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// nestedValue is a KeyValue whose value nests levels deep: arrays inside
// key-value lists, the shape of the 880 000-level request.
func nestedValue(levels int) []byte {
	v := protowire.AppendTag(nil, 1, protowire.BytesType) // AnyValue.string_value
	v = protowire.AppendString(v, "x")
	for i := 0; i < levels; i++ {
		var w []byte
		if i%2 == 0 { // AnyValue{array_value: ArrayValue{values: [v]}}
			arr := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), v)
			w = protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), arr)
		} else { // AnyValue{kvlist_value: KeyValueList{values: [KeyValue{key: "k", value: v}]}}
			kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "k")
			kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), v)
			kvl := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), kv)
			w = protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), kvl)
		}
		v = w
	}
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "deep")
	return protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), v)
}

// tracesWith wraps span fields (already encoded) in one span of one
// request: ExportTraceServiceRequest > ResourceSpans > ScopeSpans > Span.
func tracesWith(spans ...[]byte) []byte {
	var ss []byte
	for _, sp := range spans {
		ss = protowire.AppendBytes(protowire.AppendTag(ss, 2, protowire.BytesType), sp)
	}
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), ss)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
}

// NestedTracesBody is a trace request with one span whose attribute nests
// levels deep (exported for the collector's tests through export_test).
func nestedTracesBody(levels int) []byte {
	return tracesWith(protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), nestedValue(levels)))
}

func TestScanShapeDepth(t *testing.T) {
	for _, tt := range []struct {
		levels int
		ok     bool
	}{{0, true}, {10, true}, {63, true}, {64, false}, {3000, false}} {
		_, err := scanShape(nestedTracesBody(tt.levels), kTracesRequest, 64)
		var e *Error
		if tt.ok != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Class != Permanent || e.Reason != "too_deep")) {
			t.Errorf("%d levels under a limit of 64: %v", tt.levels, err)
		}
	}
	if _, err := scanShape([]byte{0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2}, kTracesRequest, 64); err == nil {
		t.Error("malformed protobuf passed the shape check")
	}
	// An ordinary request: every message counted.
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 3; i++ {
		s := sp.AppendEmpty()
		s.SetName("tools/call")
		s.Attributes().PutStr("a", "b")
		s.Attributes().PutEmptySlice("l").AppendEmpty().SetInt(1)
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	s, err := scanShape(body, kTracesRequest, 64)
	// ResourceSpans, its Resource, ScopeSpans, its scope, and 3 × (span +
	// 2 KeyValue + 2 AnyValue + ArrayValue + AnyValue).
	if err != nil || s.messages != 4+3*7 {
		t.Errorf("shape %+v, %v; want 25 messages", s, err)
	}
}

func TestScanJSONShapeDepth(t *testing.T) {
	deep := func(levels int) []byte {
		v := `{"stringValue":"x"}`
		for i := 0; i < levels; i++ {
			v = `{"kvlistValue":{"values":[{"key":"k","value":` + v + `}]}}`
		}
		return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"d","value":` + v + `}]}]}]}]}`)
	}
	if _, err := scanJSONShape(deep(60), "traces", 64); err != nil {
		t.Errorf("60 levels: %v", err)
	}
	if _, err := scanJSONShape(deep(70), "traces", 64); err == nil {
		t.Error("70 levels passed a limit of 64")
	}
	if _, err := scanJSONShape([]byte(strings.Repeat("[", 1<<20)), "traces", 64); err == nil {
		t.Error("a million brackets passed")
	}
	if _, err := scanJSONShape([]byte(`{"resourceSpans":[`), "traces", 64); err == nil {
		t.Error("truncated JSON passed")
	}
}

// TestDecodedEstimateCoversPdata decodes the shapes that cost pdata the
// most memory per wire byte and checks that the estimate reserved before
// decoding is at least what pdata allocated (runtime.MemStats, in-process).
func TestDecodedEstimateCoversPdata(t *testing.T) {
	emptySpans := make([][]byte, 200000)
	for i := range emptySpans {
		emptySpans[i] = []byte{}
	}
	emptyAttrs := tracesWith(bytes.Repeat([]byte{9<<3 | 2, 0}, 200000))
	arrayOfEmpty := func() []byte {
		arr := bytes.Repeat([]byte{0x0a, 0}, 200000) // ArrayValue{values: [{}, {}, …]}
		av := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), arr)
		kv := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), av)
		return tracesWith(protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), kv))
	}()
	var emptyLogs []byte
	{
		sl := bytes.Repeat([]byte{2<<3 | 2, 0}, 200000)
		rl := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sl)
		emptyLogs = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rl)
	}
	jsonSpans := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[` + strings.TrimSuffix(strings.Repeat("{},", 200000), ",") + `]}]}]}`)
	jsonAttrs := []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[` + strings.TrimSuffix(strings.Repeat("{},", 200000), ",") + `]}]}]}]}`)
	cases := []struct {
		name string
		body []byte
		json bool
		logs bool
	}{
		{"empty spans", tracesWith(emptySpans...), false, false},
		{"empty attributes", emptyAttrs, false, false},
		{"array of empty values", arrayOfEmpty, false, false},
		{"nested 60 levels × 2000", tracesWith(bytes.Repeat(protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), nestedValue(60)), 2000)), false, false},
		{"empty log records", emptyLogs, false, true},
		{"json empty spans", jsonSpans, true, false},
		{"json empty attributes", jsonAttrs, true, false},
	}
	for _, c := range cases {
		var s shape
		var err error
		if c.json {
			s, err = scanJSONShape(c.body, "traces", 64)
		} else if c.logs {
			s, err = scanShape(c.body, kLogsRequest, 64)
		} else {
			s, err = scanShape(c.body, kTracesRequest, 64)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if c.logs {
			req := plogotlp.NewExportRequest()
			err = req.UnmarshalProto(c.body)
			runtime.KeepAlive(req)
		} else {
			req := ptraceotlp.NewExportRequest()
			if c.json {
				err = req.UnmarshalJSON(c.body)
			} else {
				err = req.UnmarshalProto(c.body)
			}
			runtime.KeepAlive(req)
		}
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%s: pdata: %v", c.name, err)
		}
		alloc := int64(after.TotalAlloc - before.TotalAlloc)
		est := s.pdataBytes(len(c.body))
		fmt.Printf("%-28s wire %8d  messages %7d  pdata allocated %10d  estimate %10d  (%.1f× wire)\n", c.name, len(c.body), s.messages, alloc, est, float64(alloc)/float64(len(c.body)))
		if est < alloc {
			t.Errorf("%s: estimate %d bytes < %d allocated by pdata", c.name, est, alloc)
		}
	}
}

// BenchmarkScanShape: the shape check of a request like the collector
// benchmark's (500 MCP spans, 7 string attributes each, ~300 B arguments).
func BenchmarkScanShape(b *testing.B) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "files-mcp")
	sps := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 500; i++ {
		sp := sps.AppendEmpty()
		sp.SetTraceID([16]byte{1, byte(i)})
		sp.SetSpanID([8]byte{1, byte(i)})
		sp.SetName("tools/call read_file")
		a := sp.Attributes()
		a.PutStr("mcp.method.name", "tools/call")
		a.PutStr("gen_ai.tool.name", "read_file")
		a.PutStr("mcp.session.id", "sess-1")
		a.PutStr("gen_ai.agent.id", "agent-1")
		a.PutStr("jsonrpc.request.id", fmt.Sprint(i))
		a.PutStr("gen_ai.tool.call.arguments", `{"path":"/srv/data/file.txt","pad":"`+strings.Repeat("x", 200)+`"}`)
		a.PutStr("gen_ai.tool.call.result", `{"content":[{"type":"text","text":"hello"}]}`)
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := scanShape(body, kTracesRequest, 64); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/span")
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Utime.Nano()+ru.Stime.Nano())/float64(b.N)/500, "cpu-ns/span") // process CPU incl. setup: compare like with like
}

// batchProbe is a batch consumer (the direct decoder's path) that records
// the receiver's in-flight bytes while a request runs.
type batchProbe struct {
	sizeProbe
	events *int
}

func (p batchProbe) ConsumeBatch(_ context.Context, _ string, b event.Batch) (Result, error) {
	p.seen.Store(p.r.budget.inFlight())
	*p.events += len(b.Events)
	return Result{}, nil
}

// TestDirectReservesDecodedSize: on the direct decoder's path (no shape
// check before it), what the mapping will hold is reserved before the
// batch exists: the body twice, eventCost per span and pdataCost per
// nested value, plus what the parse grew; a value nested past the limit
// is still answered 400 naming the depth, and nothing stays reserved.
func TestDirectReservesDecodedSize(t *testing.T) {
	r := newTestReceiver(t)
	var seen atomic.Int64
	var events int
	r.cons = batchProbe{sizeProbe{r: r, seen: &seen}, &events}
	h := r.HTTPHandler()
	send := func(body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctProto)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	td := ptrace.NewTraces()
	sps := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 50; i++ {
		sp := sps.AppendEmpty()
		sp.SetTraceID([16]byte{1, byte(i)})
		sp.SetSpanID([8]byte{1, byte(i)})
		sp.SetName("tools/call")
		sp.Attributes().PutStr("mcp.method.name", "tools/call")
		l := sp.Attributes().PutEmptySlice("l")
		l.AppendEmpty().SetStr("a")
		l.AppendEmpty().SetInt(1)
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if w := send(body); w.Code != http.StatusOK || events != 50 {
		t.Fatalf("%d %s, %d events", w.Code, w.Body, events)
	}
	if got, want := seen.Load(), 2*int64(len(body))+50*eventCost+100*pdataCost; got < want {
		t.Errorf("in-flight bytes while the batch was consumed = %d, want at least %d (wire %d)", got, want, len(body))
	}
	for _, levels := range []int{64, 3000} {
		if w := send(nestedTracesBody(levels)); w.Code != http.StatusBadRequest || !bytes.Contains(w.Body.Bytes(), []byte("nests deeper than 64")) {
			t.Errorf("%d levels: %d %q, want 400 naming the depth", levels, w.Code, w.Body)
		}
	}
	if w := send(nestedTracesBody(63)); w.Code != http.StatusOK {
		t.Errorf("63 levels: %d %s", w.Code, w.Body)
	}
	if n := r.budget.inFlight(); n != 0 {
		t.Errorf("%d bytes still in flight after the answers", n)
	}
}
