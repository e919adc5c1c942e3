package event

import (
	"bytes"
	"testing"

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
	// pdata maps instrumentation_library_logs only when there are no
	// scope_logs (otlp.MigrateLogs).
	for _, c := range []struct {
		rl     []byte
		events int
	}{{bytes.Join([][]byte{pbLen(2, rec), pbLen(1000, rec)}, nil), 1}, {bytes.Join([][]byte{pbLen(1000, rec), pbLen(1000, rec)}, nil), 2}} {
		body := pbLen(1, c.rl)
		if !checkDirect(t, logs, body, MapOptions{ReceivedAt: received}) {
			t.Error("deprecated scope logs: declined")
		}
		if b, n, _ := LogsFromProto(body, MapOptions{ReceivedAt: received}); len(b.Events) != c.events || n != c.events {
			t.Errorf("deprecated scope logs: %d events of %d records, want %d", len(b.Events), n, c.events)
		}
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
	rec := pbLen(2, pbLen(12, []byte(LogEventAudit)), pbLen(6, pbLen(1, []byte("gen_ai.tool.name")), pbLen(2, pbStr("t"))))
	f.Add(pbLen(1, pbLen(1000, rec)))
	f.Add(pbLen(1, pbLen(2, rec), pbLen(1000, rec)))
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
