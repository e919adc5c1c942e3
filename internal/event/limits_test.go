package event

import (
	"bytes"
	"runtime"
	"testing"
)

// nestedAttr is a span attribute whose value nests levels deep below its
// AnyValue (level 1): arrays and key-value lists in turn.
func nestedAttr(levels int) []byte {
	v := pbStr("leaf")
	for i := 0; i < levels; i++ {
		if i%2 == 0 {
			v = pbLen(5, pbLen(1, v)) // AnyValue{array_value: [v]}
		} else {
			v = pbLen(6, pbLen(1, pbLen(1, []byte("k")), pbLen(2, v))) // AnyValue{kvlist_value: {k: v}}
		}
	}
	return pbAttr("custom.deep", v)
}

// TestDecodeLimitsDepth: the validation walk declines a value nested past
// MaxValueDepth when it reaches the limit (so its recursion is bounded by
// it), counting levels as the receiver's shape check does: 63 levels
// below the attribute's value (64 AnyValues) pass a limit of 64, 64 do
// not. A string attribute inside a map at the limit is one level too deep
// too. Without a limit, deep values are read (FromTraces).
func TestDecodeLimitsDepth(t *testing.T) {
	method := pbAttr("mcp.method.name", pbStr("tools/call"))
	lim := MapOptions{ReceivedAt: received, Limits: DecodeLimits{MaxValueDepth: 64}}
	for _, c := range []struct {
		levels int
		ok     bool
	}{{0, true}, {62, true}, {63, true}, {64, false}, {3000, false}} {
		body := pbLen(1, pbSpan("a", method, nestedAttr(c.levels)))
		if _, _, ok := TracesFromProto(body, lim); ok != c.ok {
			t.Errorf("%d levels, limit 64: ok=%v, want %v", c.levels, ok, c.ok)
		}
		if c.levels <= 64 {
			if _, _, ok := TracesFromProto(body, MapOptions{ReceivedAt: received}); !ok {
				t.Errorf("%d levels, no limit: declined", c.levels)
			}
		}
	}
	// A log body is level 1 as well.
	body := pbStr("leaf")
	for i := 0; i < 64; i++ {
		body = pbLen(5, pbLen(1, body))
	}
	logs := pbLen(1, pbLen(2, pbLen(2, pbLen(12, []byte(LogEventAudit)), pbLen(5, body))))
	if _, _, ok := LogsFromProto(logs, lim); ok {
		t.Error("a log body 65 levels deep passed a limit of 64")
	}
	if _, _, ok := LogsFromProto(logs, MapOptions{ReceivedAt: received, Limits: DecodeLimits{MaxValueDepth: 65}}); !ok {
		t.Error("a log body 65 levels deep declined under a limit of 65")
	}
}

// TestDecodeLimitsMemory: Grow is asked before the parse's slices grow,
// for at least what they then hold, and a refusal declines the request;
// Admit gets the records and nested values before anything is mapped.
func TestDecodeLimitsMemory(t *testing.T) {
	method := pbAttr("mcp.method.name", pbStr("tools/call"))
	list := pbAttr("custom.list", pbLen(5, pbLen(1, pbStr("a")), pbLen(1, pbStr("b")), pbLen(1, pbLen(6, pbLen(1, pbLen(1, []byte("k")), pbLen(2, pbStr("v"))))))) // [a, b, {k: v}]
	var spans [][]byte
	for i := 0; i < 2000; i++ {
		spans = append(spans, pbLen(2, pbLen(1, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}), pbLen(5, []byte("s")), method, list))
	}
	body := pbLen(1, pbLen(2, bytes.Join(spans, nil)))

	// A fresh parse (two collections empty the pools) asks for every slice
	// it grows.
	var grown int64
	var records, values int
	o := MapOptions{ReceivedAt: received, Limits: DecodeLimits{
		Grow:  func(n int64) bool { grown += n; return true },
		Admit: func(r, v int) bool { records, values = r, v; return true },
	}}
	runtime.GC()
	runtime.GC()
	b, n, ok := TracesFromProto(body, o)
	if !ok || n != 2000 || len(b.Events) != 2000 {
		t.Fatalf("ok=%v, %d spans, %d events", ok, n, len(b.Events))
	}
	if records != 2000 || values != 2000*4 { // a, b, the map and its key-value
		t.Errorf("Admit got %d records and %d values, want 2000 and 8000", records, values)
	}
	// 2000 spans and 4000 attributes held: at least ~140 and ~48 bytes each.
	if grown < 2000*140+4000*48 {
		t.Errorf("Grow was asked for %d bytes, less than the spans and attributes held", grown)
	}
	t.Logf("grown %d bytes for %d wire bytes", grown, len(body))

	for name, lim := range map[string]DecodeLimits{
		"grow refused":  {Grow: func(n int64) bool { return false }},
		"admit refused": {Admit: func(int, int) bool { return false }},
	} {
		runtime.GC()
		runtime.GC()
		if b, _, ok := TracesFromProto(body, MapOptions{ReceivedAt: received, Limits: lim}); ok || len(b.Events) != 0 {
			t.Errorf("%s: ok=%v, %d events", name, ok, len(b.Events))
		}
	}
}
