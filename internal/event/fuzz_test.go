package event

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// seedFiles adds every capture under testdata as a seed (JSON and protobuf),
// so `go test` runs them on every build.
func seedFiles(f *testing.F, exts ...string) {
	f.Helper()
	err := filepath.Walk("testdata", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		for _, ext := range exts {
			if strings.HasSuffix(p, ext) {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				f.Add(b)
			}
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

// deepTraces is an MCP span whose arguments, tool definitions and extra
// attributes nest far deeper than any walk is allowed to recurse.
func deepTraces() ptrace.Traces {
	s := newSpan("tools/list", ptrace.SpanKindServer)
	a := s.attrs()
	a.PutStr("mcp.method.name", "tools/list")
	deepJSON := strings.Repeat(`{"a":[`, 2000) + strings.Repeat(`]}`, 2000)
	a.PutStr("gen_ai.tool.call.arguments", deepJSON)
	a.PutStr("gen_ai.tool.definitions", `[{"name":"x","inputSchema":`+deepJSON+`}]`)
	a.PutStr("traceloop.entity.output", `{"tools":[{"name":"y","inputSchema":`+deepJSON+`}]}`)
	m := a.PutEmptyMap("deep.map")
	for i := 0; i < 2000; i++ {
		m = m.PutEmptyMap("k")
	}
	sl := a.PutEmptySlice("deep.slice")
	for i := 0; i < 2000; i++ {
		sl = sl.AppendEmpty().SetEmptySlice()
	}
	return s.td
}

func deepLogs() plog.Logs {
	l := newLog(LogEventToolsSnapshot)
	body := l.lr.Body().SetEmptyMap()
	body.PutStr("name", "deep")
	m := body.PutEmptyMap("inputSchema")
	for i := 0; i < 2000; i++ {
		m = m.PutEmptyMap("properties")
	}
	l.attrs.PutStr("mcpwatch.tool_annotations", strings.Repeat("[", 100000))
	return l.ld
}

// checkBatch asserts invariants of any mapping result (FromTraces and
// FromLogs always read pdata's encoding of their input) and that the codec
// round-trips it.
func checkBatch(t *testing.T, b Batch) {
	t.Helper()
	if n := b.DropReasons[DropUnreadable]; n != 0 {
		t.Fatalf("%d spans/records unreadable: the direct mapper declined pdata's encoding", n)
	}
	for i := range b.Events {
		e := &b.Events[i]
		if e.EventID == "" || e.AgentID == "" || e.CallID == "" || e.Tenant == "" || e.Method == "" || e.Outcome == "" || e.Observer == "" {
			t.Fatalf("event %d lacks a required field: %+v", i, e)
		}
		if len(e.AttrKeys) != len(e.AttrValues) || len(e.AttrKeys) > MaxExtraAttrs+1 {
			t.Fatalf("extra attributes out of bounds: %d/%d", len(e.AttrKeys), len(e.AttrValues))
		}
		checkClean(t, e)
	}
	val, err := Marshal(b.Events)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(val)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(b.Events) {
		t.Fatalf("codec lost events: %d != %d", len(back), len(b.Events))
	}
}

func FuzzFromTraces(f *testing.F) {
	// The deep-nesting inputs are exercised by TestDeepNesting rather than
	// seeded: large seeds make the fuzzer's minimization crawl.
	seedFiles(f, ".json", ".pb")
	f.Fuzz(func(t *testing.T, data []byte) {
		if td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data); err == nil {
			checkBatch(t, FromTraces(td, MapOptions{}))
		}
		if td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(data); err == nil {
			checkBatch(t, FromTraces(td, MapOptions{Tenant: "t"}))
		}
	})
}

func FuzzFromLogs(f *testing.F) {
	for _, ld := range []plog.Logs{sampleLogs()} {
		if b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld); err == nil {
			f.Add(b)
		}
		if b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data); err == nil {
			checkBatch(t, FromLogs(ld, MapOptions{}))
		}
		if ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(data); err == nil {
			checkBatch(t, FromLogs(ld, MapOptions{}))
		}
		// Our own topic decoder must not panic on anything either.
		_, _ = Unmarshal(data)
	})
}

func sampleLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("mcpwatch.tenant", "acme")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	a := lrs.AppendEmpty()
	a.SetEventName(LogEventAudit)
	a.Attributes().PutStr("mcp.method.name", "tools/call")
	a.Attributes().PutStr("gen_ai.tool.name", "exec")
	a.Attributes().PutStr("gen_ai.tool.call.arguments", `{"cmd":"curl http://169.254.169.254/"}`)
	a.Attributes().PutStr("mcp.gateway.decision", "deny")
	d := lrs.AppendEmpty()
	d.SetEventName(LogEventToolsSnapshot)
	d.Body().SetStr(`{"name":"fetch","description":"Fetch a URL","inputSchema":{"type":"object"},"annotations":{"openWorldHint":true}}`)
	o := lrs.AppendEmpty()
	o.Body().SetStr("not mcp")
	o.SetTraceID(pcommon.TraceID{1})
	return ld
}

// TestDeepNesting runs the deep seeds directly with concrete expectations.
func TestDeepNesting(t *testing.T) {
	b := FromTraces(deepTraces(), MapOptions{})
	checkBatch(t, b)
	msgs, defs := bySpan(t, b.Events)
	eq(t, "messages", len(msgs), 1)
	eq(t, "defs", len(defs), 2)
	// Too deep to canonicalize: kept raw, still hashed.
	if !strings.HasPrefix(get(t, defs, "x").ToolInputSchema, `{"a":[{"a":[`) {
		t.Errorf("deep schema not kept raw")
	}
	v, _ := get(t, msgs, "0a0b0c0d01020304").Attr("deep.map")
	if !strings.Contains(v, "null") || len(v) > MaxExtraValueLen {
		t.Errorf("deep map attribute not bounded: %d bytes", len(v))
	}
	lb := FromLogs(deepLogs(), MapOptions{})
	checkBatch(t, lb)
	eq(t, "deep snapshot events", len(lb.Events), 1)
	eq(t, "deep snapshot annotations raw", lb.Events[0].ToolAnnotations, strings.Repeat("[", 100000))
}
