package event

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

func logsProto(t testing.TB, ld plog.Logs) []byte {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syntheticLogs covers mapper.log's corners: every attribute-table row
// with every scalar type, bodies of every kind, snapshots, severities,
// ids, and non-MCP records.
func syntheticLogs() map[string]plog.Logs {
	out := map[string]plog.Logs{"sample": sampleLogs(), "deep": deepLogs()}
	put := func(a pcommon.Map, k string, typ int, s string) {
		switch typ {
		case 0:
			a.PutStr(k, s)
		case 1:
			a.PutInt(k, int64(len(s))*7-3)
		case 2:
			a.PutDouble(k, float64(len(s))+0.25)
		case 3:
			a.PutBool(k, len(s)%2 == 1)
		case 4:
			a.PutEmptyBytes(k).FromRaw([]byte(s))
		case 5:
			a.PutEmpty(k)
		case 6:
			a.PutEmptySlice(k).AppendEmpty().SetStr(s)
		case 7:
			a.PutEmptyMap(k).PutStr("v", s)
		}
	}
	vals := map[field]string{fTokenExpires: "1800000000", fScopes: "a b", fIsError: "1", fDecision: "blocked",
		fObserver: "server", fStatusCode: "-32000", fErrorType: "-32601", fToolAnnotations: `{"z":1,"a":[2]}`,
		fToolDefinitions: `[{"name":"t1","description":"d"},{"name":""}]`}
	for typ := 0; typ <= 7; typ++ {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		put(rl.Resource().Attributes(), "service.name", typ, "gw")
		put(rl.Resource().Attributes(), "mcpwatch.tenant", typ, "t2")
		put(rl.Resource().Attributes(), "zz.first", typ, "z")
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
			put(lr.Attributes(), a.Key, typ, v)
			put(lr.Attributes(), "custom.extra", (typ+i)%8, "x")
			lr.Attributes().PutStr("b.dup", "first")
			lr.Attributes().PutStr("b.dup", "second")
		}
		other := lrs.AppendEmpty()
		other.Body().SetStr("application log")
		out[fmt.Sprintf("table-type%d", typ)] = ld
	}
	return out
}

// TestDirectLogs: every synthetic request maps directly; the deprecated
// instrumentation_library_logs is read and not mapped; malformed requests
// are declined.
func TestDirectLogs(t *testing.T) {
	for name, ld := range syntheticLogs() {
		for _, o := range []MapOptions{{Tenant: "acme", ReceivedAt: received}, {ReceivedAt: received}} {
			if !checkDirect(t, logs, logsProto(t, ld), o) {
				t.Errorf("%s: the direct path declined", name)
			}
		}
	}
	// resource_logs { scope_logs { record }, 1000 { record } }, the records
	// mcp.audit with a tool name, the body a string table index.
	rec := pbLen(2, pbLen(12, []byte(LogEventAudit)), pbLen(6, pbLen(1, []byte("gen_ai.tool.name")), pbLen(2, pbStr("t"))), pbLen(5, pbVarint(8, 1)))
	body := pbLen(1, pbLen(2, rec), pbLen(1000, rec))
	if !checkDirect(t, logs, body, MapOptions{ReceivedAt: received}) {
		t.Error("deprecated scope logs: declined")
	}
	if b, n, _ := LogsFromProto(body, MapOptions{ReceivedAt: received}); len(b.Events) != 1 || n != 1 {
		t.Errorf("deprecated scope logs: %d events of %d records, want 1 of 1", len(b.Events), n)
	}
	for name, body := range map[string][]byte{
		"truncated":     logsProto(t, sampleLogs())[:20],
		"bad wire type": {0x08, 0x01},
		"short span id": {0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x52, 0x03, 1, 2, 3},
	} {
		if _, _, ok := LogsFromProto(body, MapOptions{}); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDirectLogs(f *testing.F) {
	for _, ld := range syntheticLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			lrs := rls.At(i).ScopeLogs().At(0).LogRecords()
			for k := 0; k < lrs.Len(); k += 7 {
				one := plog.NewLogs()
				rl := one.ResourceLogs().AppendEmpty()
				rls.At(i).Resource().CopyTo(rl.Resource())
				lrs.At(k).CopyTo(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
				if b, err := plogotlp.NewExportRequestFromLogs(one).MarshalProto(); err == nil && len(b) < 2048 {
					f.Add(b)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDirect(t, logs, data, MapOptions{Tenant: "t", ReceivedAt: received})
	})
}
