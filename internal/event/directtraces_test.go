package event

import (
	"bytes"
	"encoding/binary"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// checkDirect maps body with direct and through pdata: decode, then
// FromTraces/FromLogs, which map pdata's own encoding of the request with
// the same direct mapper. It asserts that the direct mapper
//   - never accepts a body pdata rejects,
//   - always reads pdata's encoding (FromTraces/FromLogs never fall back),
//   - maps a body it accepts exactly as pdata's re-encoding of it (so
//     field order, unknown fields, merged repeats and the other liberties
//     of the wire format do not change the events),
//   - counts the spans/records as pdata does,
//
// and that every batch satisfies checkBatch. It reports whether direct
// accepted the body.
func checkDirect(t *testing.T, sig signal, body []byte, o MapOptions) bool {
	t.Helper()
	got, n, ok := sig.direct(body, o)
	want, wantN, err := sig.viaPdata(body, o)
	if err != nil {
		if ok {
			t.Fatalf("direct path accepted a body pdata rejects (%v)", err)
		}
		return false
	}
	if want.DropReasons[DropUnreadable] != 0 {
		t.Fatalf("the direct mapper declined pdata's encoding of a request")
	}
	checkBatch(t, want)
	if !ok {
		return false
	}
	if n != wantN {
		t.Fatalf("count %d, pdata %d", n, wantN)
	}
	if !reflect.DeepEqual(got, want) {
		if len(got.Events) != len(want.Events) {
			t.Fatalf("direct path: %d events (dropped %v), via pdata: %d (dropped %v)", len(got.Events), got.DropReasons, len(want.Events), want.DropReasons)
		}
		for i := range want.Events {
			if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
				t.Fatalf("event %d differs\n direct    %+v\n via pdata %+v", i, got.Events[i], want.Events[i])
			}
		}
		t.Fatalf("batches differ: direct dropped %d %v, via pdata %d %v", got.Dropped, got.DropReasons, want.Dropped, want.DropReasons)
	}
	// Within limits (DecodeLimits) it maps the same, having told Admit its
	// records, or declines.
	admitted := -1
	lim := o
	lim.Limits = DecodeLimits{MaxValueDepth: 64, Grow: func(int64) bool { return true },
		Admit: func(records, _ int) bool { admitted = records; return true }}
	if b, _, ok := sig.direct(body, lim); ok {
		if admitted != n || !reflect.DeepEqual(b, want) {
			t.Fatalf("within limits: admitted %d records of %d, batch equal: %v", admitted, n, reflect.DeepEqual(b, want))
		}
		b.Release()
	}
	// Hand the slice back: later calls map into recycled slices.
	got.Release()
	if got.Events != nil {
		t.Fatal("Release left the events")
	}
	return true
}

// signal is one signal's two ways from protobuf to events.
type signal struct {
	direct   func([]byte, MapOptions) (Batch, int, bool)
	viaPdata func([]byte, MapOptions) (Batch, int, error)
}

var (
	traces = signal{TracesFromProto, func(body []byte, o MapOptions) (Batch, int, error) {
		req := ptraceotlp.NewExportRequest()
		err := req.UnmarshalProto(body) // on error the batch is not looked at
		return FromTraces(req.Traces(), o), req.Traces().SpanCount(), err
	}}
	logs = signal{LogsFromProto, func(body []byte, o MapOptions) (Batch, int, error) {
		req := plogotlp.NewExportRequest()
		err := req.UnmarshalProto(body)
		return FromLogs(req.Logs(), o), req.Logs().LogRecordCount(), err
	}}
)

func tracesProto(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirectTracesCaptures: every real capture, as its sender encoded it
// (.pb) or as pdata encodes it (.json), and every synthetic request maps
// directly, as its pdata re-encoding does.
func TestDirectTracesCaptures(t *testing.T) {
	opts := []MapOptions{{Tenant: "acme", ReceivedAt: received}, {ReceivedAt: received}}
	files := captureTraceFiles(t)
	for _, f := range files {
		body := tracesProto(t, loadTraces(t, f))
		if strings.HasSuffix(f, ".pb") {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			body = raw
		}
		for _, o := range opts {
			if !checkDirect(t, traces, body, o) {
				t.Errorf("%s: the direct path declined", f)
			}
		}
	}
	for name, td := range syntheticTraces() {
		for _, o := range opts {
			if !checkDirect(t, traces, tracesProto(t, td), o) {
				t.Errorf("%s: the direct path declined", name)
			}
		}
	}
}

// Protobuf built by hand: pbLen is a length-delimited field of the
// concatenated parts, pbVarint a varint field.
func pbLen(num int, parts ...[]byte) []byte {
	return protowireAppendLen(nil, num, string(bytes.Join(parts, nil)))
}

func pbVarint(num int, v uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, uint64(num)<<3|wireVarint), v)
}

// pbSpan is a ScopeSpans with one span named name carrying attrs.
func pbSpan(name string, attrs ...[]byte) []byte { return pbScopeSpans(2, name, attrs...) }

// pbScopeSpans is pbSpan as field num of the ResourceSpans.
func pbScopeSpans(num int, name string, attrs ...[]byte) []byte {
	tid := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return pbLen(num, pbLen(2, append([][]byte{pbLen(1, tid), pbLen(5, []byte(name))}, attrs...)...))
}

// pbAttr is a span attribute (KeyValue, field 9) with the given AnyValue fields.
func pbAttr(key string, value ...[]byte) []byte {
	return pbLen(9, pbLen(1, []byte(key)), pbLen(2, value...))
}

func pbStr(s string) []byte { return pbLen(1, []byte(s)) }

// TestDirectTracesEncodings: the direct mapper reads every encoding pdata
// writes (deprecated instrumentation_library_spans, the profiles' string
// table indexes, deep nesting) and declines, for the pdata re-encoding,
// only those pdata reads but never writes.
func TestDirectTracesEncodings(t *testing.T) {
	method := pbAttr("mcp.method.name", pbStr("tools/call"))
	deep := pbStr("leaf")
	for i := 0; i < 300; i++ {
		deep = pbLen(5, pbLen(1, deep)) // an array holding the previous value
	}
	for _, c := range []struct {
		name   string
		rs     []byte // the ResourceSpans
		direct bool
		events int
	}{
		// pdata maps instrumentation_library_spans (1000) only when there are
		// no scope_spans (otlp.MigrateTraces); it must be valid either way.
		{"deprecated scope spans", bytes.Join([][]byte{pbSpan("a", method), pbScopeSpans(1000, "b", method)}, nil), true, 1},
		{"deprecated scope spans only", bytes.Join([][]byte{pbScopeSpans(1000, "b", method), pbScopeSpans(1000, "c", method)}, nil), true, 2},
		{"empty scope spans and deprecated", bytes.Join([][]byte{pbLen(2), pbScopeSpans(1000, "b", method)}, nil), true, 0},
		{"invalid deprecated scope spans", bytes.Join([][]byte{pbSpan("a", method), pbLen(1000, pbLen(2, pbLen(1, []byte{1, 2, 3})))}, nil), false, -1},
		{"key_strindex", pbSpan("a", pbLen(9, pbLen(1, []byte("mcp.method.name")), pbLen(2, pbStr("tools/call")), pbVarint(3, 7))), true, 1},
		{"string_value_strindex", pbSpan("a", method, pbAttr("custom.x", pbVarint(8, 3))), true, 1},
		{"deep array", pbSpan("a", method, pbAttr("custom.deep", deep)), true, 1},
		{"two values", pbSpan("a", method, pbAttr("custom.x", pbStr("s"), pbVarint(3, 1))), false, 1},
		{"two keys", pbSpan("a", method, pbLen(9, pbLen(1, []byte("x")), pbLen(1, []byte("y")), pbLen(2, pbStr("v")))), false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := pbLen(1, c.rs)
			if got := checkDirect(t, traces, body, MapOptions{ReceivedAt: received}); got != c.direct {
				t.Errorf("direct: %v, want %v", got, c.direct)
			}
			b, _, err := traces.viaPdata(body, MapOptions{ReceivedAt: received})
			if c.events < 0 { // malformed
				if err == nil {
					t.Error("pdata accepted it")
				}
				return
			}
			if err != nil || len(b.Events) != c.events {
				t.Errorf("via pdata: %d events (%v), want %d", len(b.Events), err, c.events)
			}
		})
	}
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
		checkDirect(t, traces, body, MapOptions{ReceivedAt: received})
	}
	// An empty request is a valid one.
	if b, n, ok := TracesFromProto(nil, MapOptions{}); !ok || n != 0 || len(b.Events) != 0 {
		t.Errorf("empty request: ok=%v n=%d events=%d", ok, n, len(b.Events))
	}
}

func FuzzDirectTraces(f *testing.F) {
	seedFiles(f, ".pb")
	// The encodings pdata reads besides its own (instrumentation_library_spans,
	// string table indexes, two values in a KeyValue).
	method := pbAttr("mcp.method.name", pbStr("tools/call"))
	f.Add(pbLen(1, pbScopeSpans(1000, "a", method, pbAttr("x", pbVarint(8, 1)))))
	f.Add(pbLen(1, pbSpan("a", method), pbScopeSpans(1000, "b", method)))
	f.Add(pbLen(1, pbSpan("a", pbLen(9, pbLen(1, []byte("mcp.method.name")), pbLen(2, pbStr("tools/call")), pbVarint(3, 7), pbLen(2, pbStr("x"))))))
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
		checkDirect(t, traces, data, MapOptions{Tenant: "t", ReceivedAt: received})
	})
}

// TestStrKeyValue: the fast path reads a string attribute in either field
// order and with one- and two-byte lengths, maps it as keyValue's loop
// does, and leaves every other shape to the loop.
func TestStrKeyValue(t *testing.T) {
	long := strings.Repeat("v", 300)
	loop := func(b []byte) rawKV { // keyValue's loop, fast path bypassed
		w := &walker{}
		w.str = string(b)
		w.full = []byte(w.str)
		f := fields(w.full)
		var out rawKV
		for f.next() {
			switch f.num {
			case 1:
				out.key = w.sub(f.v)
			case 2:
				if !w.anyValue(f.v, &out.v) {
					t.Fatalf("%x: not an AnyValue", b)
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		kv   []byte
		fast bool
	}{
		{"key first", pbLen(1, pbLen(1, []byte("mcp.method.name")), pbLen(2, pbStr("tools/call")))[2:], true},
		{"value first (pdata)", pbLen(1, pbLen(2, pbStr("tools/call")), pbLen(1, []byte("mcp.method.name")))[2:], true},
		{"two-byte lengths", bytes.Join([][]byte{pbLen(2, pbStr(long)), pbLen(1, []byte("k"))}, nil), true},
		{"empty key and value", bytes.Join([][]byte{pbLen(1), pbLen(2, pbStr(""))}, nil), true},
		{"int value", bytes.Join([][]byte{pbLen(1, []byte("k")), pbLen(2, pbVarint(3, 7))}, nil), false},
		{"empty value", bytes.Join([][]byte{pbLen(1, []byte("k")), pbLen(2)}, nil), false},
		{"key only", pbLen(1, []byte("k")), false},
		{"key_strindex", bytes.Join([][]byte{pbLen(1, []byte("k")), pbLen(2, pbStr("v")), pbVarint(3, 1)}, nil), false},
		{"two keys", bytes.Join([][]byte{pbLen(1, []byte("k")), pbLen(1, []byte("k"))}, nil), false},
		{"string and bytes", bytes.Join([][]byte{pbLen(1, []byte("k")), pbLen(2, pbStr("v"), pbLen(7, []byte("b")))}, nil), false},
	} {
		key, str, ok := strKeyValue(c.kv)
		if ok != c.fast {
			t.Errorf("%s: fast path %v, want %v", c.name, ok, c.fast)
			continue
		}
		if ok {
			want := loop(c.kv)
			if want.v.typ != pcommon.ValueTypeStr || string(key) != want.key || string(str) != want.v.s {
				t.Errorf("%s: %q=%q, the loop reads %q=%q (%v)", c.name, key, str, want.key, want.v.s, want.v.typ)
			}
		}
	}
}
