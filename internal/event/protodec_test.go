package event

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// captureEvents maps every real OTLP capture under testdata to canonical
// events.
func captureEvents(t *testing.T) []Event {
	t.Helper()
	var evs []Event
	for _, f := range captureTraceFiles(t) {
		evs = append(evs, FromTraces(loadTraces(t, f), MapOptions{Tenant: "acme"}).Events...)
	}
	return evs
}

// within reports whether s points into b.
func within(s string, b []byte) bool {
	if len(s) == 0 || len(b) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	lo := uintptr(unsafe.Pointer(&b[0]))
	return p >= lo && p < lo+uintptr(len(b))
}

// TestDecoderEqualsUnmarshalAppend: on the real captures (one value per
// event, as on the topic, and all events in one value) and on a fully
// filled event, Decoder.UnmarshalAppend returns exactly what
// UnmarshalAppend returns; the interned fields are shared between events
// and never alias the value; a reused buffer does not change the events.
func TestDecoderEqualsUnmarshalAppend(t *testing.T) {
	evs := captureEvents(t)
	full := make([]Event, 3)
	for i := range full {
		fillAll(t, &full[i], i%2) // two events share every value
	}
	evs = append(evs, full...)

	var dec Decoder
	var want, got []Event
	var vals [][]byte
	for i := range evs {
		v, err := Marshal(evs[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		vals = append(vals, v)
		if want, err = UnmarshalAppend(want, v); err != nil {
			t.Fatal(err)
		}
		if got, err = dec.UnmarshalAppend(got, v); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("Decoder differs from UnmarshalAppend:\n want %+v\n got  %+v", want, got)
	}
	for i := range got {
		e := &got[i]
		for _, s := range []string{e.Tenant, string(e.Kind), e.ServiceName, e.Method, e.ServerName, e.ToolName, string(e.Outcome)} {
			if within(s, vals[i]) {
				t.Fatalf("event %d: interned %q aliases its value", i, s)
			}
		}
	}
	// Equal interned values share their bytes.
	a, b := &got[len(got)-3], &got[len(got)-1]
	if a.ToolName != b.ToolName || unsafe.StringData(a.ToolName) != unsafe.StringData(b.ToolName) {
		t.Errorf("tool names %q/%q not shared", a.ToolName, b.ToolName)
	}
	if unsafe.StringData(a.Tags[0]) != unsafe.StringData(b.Tags[0]) {
		t.Errorf("tags %q not shared", a.Tags[0])
	}
	// The caller may reuse its buffers.
	for _, v := range vals {
		clear(v)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatal("events changed when the values were overwritten")
	}

	// All in one value.
	v, err := Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	w1, err1 := UnmarshalAppend(nil, v)
	g1, err2 := dec.UnmarshalAppend(nil, v)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !reflect.DeepEqual(w1, g1) {
		t.Fatal("Decoder differs from UnmarshalAppend on a multi-event value")
	}

	// Errors leave dst as UnmarshalAppend leaves it.
	bad := append(vals[0][:len(vals[0]):len(vals[0])], 0x0a, 0x7f)
	n := len(got)
	got, err = dec.UnmarshalAppend(got, bad)
	if err == nil || len(got) != n {
		t.Fatalf("bad value: err %v, len %d want %d", err, len(got), n)
	}
}

// TestInternerBounded: past maxInterned distinct strings the table starts
// over, long strings are not kept, and every string comes back equal.
func TestInternerBounded(t *testing.T) {
	var in Interner
	long := strings.Repeat("x", maxInternedLen+1)
	if got := in.String(long); got != long || len(in.m) != 0 {
		t.Fatalf("long string kept: %d entries", len(in.m))
	}
	for i := 0; i < 3*maxInterned; i++ {
		s := "k" + strings.Repeat("y", i%7) + string(rune('a'+i%26)) + itoa(i)
		if got := in.String(s); got != s {
			t.Fatalf("String(%q) = %q", s, got)
		}
		if len(in.m) > maxInterned {
			t.Fatalf("%d entries, bound %d", len(in.m), maxInterned)
		}
	}
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[p:])
}

// FuzzDecoder: on any input the Decoder neither panics nor differs from
// UnmarshalAppend (events or error).
func FuzzDecoder(f *testing.F) {
	seed := make([]Event, 2)
	fillAll(f, &seed[0], 0)
	fillAll(f, &seed[1], 1)
	if v, err := Marshal(seed); err == nil {
		f.Add(v)
	}
	if v, err := Marshal(seed[:1]); err == nil {
		f.Add(v)
	}
	var dec Decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err1 := UnmarshalAppend(nil, data)
		got, err2 := dec.UnmarshalAppend(nil, data)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("errors differ: %v / %v", err1, err2)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("events differ:\n want %+v\n got  %+v", want, got)
		}
	})
}

// BenchmarkDecode compares, on one-event values as on the topic, the plain
// UnmarshalAppend with the analyzer's Decoder (interning and owning).
//
//	go test -run '^$' -bench BenchmarkDecode -benchmem ./internal/event/
func BenchmarkDecode(b *testing.B) {
	const n = 1000
	vals := make([][]byte, n)
	for i := range vals {
		var e Event
		fillAll(b, &e, i%5) // five distinct events
		e.EventID = "e-" + itoa(i)
		e.Arguments = `{"path":"/tmp/` + itoa(i) + `"}`
		v, err := Marshal([]Event{e})
		if err != nil {
			b.Fatal(err)
		}
		vals[i] = v
	}
	var dec Decoder
	for _, c := range []struct {
		name string
		fn   func([]Event, []byte) ([]Event, error)
	}{{"UnmarshalAppend", UnmarshalAppend}, {"Decoder", dec.UnmarshalAppend}} {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]Event, 0, n)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if i%n == 0 {
					clear(dst)
					dst = dst[:0]
				}
				var err error
				if dst, err = c.fn(dst, vals[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
