package otlpin

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// splitSlice cuts b into grpc receive buffers of n bytes.
func splitSlice(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return s
}

// TestRawCodec: a rawMessage gets the exact bytes, whatever the buffers;
// other messages go to the registered proto codec.
func TestRawCodec(t *testing.T) {
	c := rawCodec{encoding.GetCodecV2(protoCodecName)}
	body := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 20000)
	for _, n := range []int{1, 7, 16 << 10, len(body)} {
		data := splitSlice(append([]byte(nil), body...), n)
		var m rawMessage
		if err := c.Unmarshal(data, &m); err != nil || m.in != string(body) {
			t.Fatalf("buffers of %d: err %v, equal %v", n, err, m.in == string(body))
		}
		// grpc reuses its buffers once the codec returns: the request
		// must not share them.
		for _, b := range data {
			clear(b.ReadOnlyData())
		}
		if m.in != string(body) {
			t.Fatalf("buffers of %d: the request changed with grpc's buffers", n)
		}
	}
	var m rawMessage
	if err := c.Unmarshal(nil, &m); err != nil || m.in != "" {
		t.Fatalf("empty: %v %q", err, m.in)
	}
	// Not a rawMessage: the delegate decodes (and refuses a non-proto type).
	if err := c.Unmarshal(splitSlice(body, 100), new(int)); err == nil {
		t.Fatal("delegate accepted an *int")
	}
}

// BenchmarkRawCodec: a 350 KB request in 16 KiB receive buffers, as the
// string the direct decoder maps: through rawCodec (one copy), through the
// pooled buffer rawCodec filled until 2026-12-08 and then the string copy
// of it (two copies), and through the registered codec.
func BenchmarkRawCodec(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 350<<10/18)
	data := splitSlice(body, 16<<10)
	raw := rawCodec{encoding.GetCodecV2(protoCodecName)}
	for _, c := range []struct {
		name string
		read func() string
	}{
		{"raw", func() string {
			var m rawMessage
			if err := raw.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
			return m.in
		}},
		{"pooled+string", func() string {
			buf := bufPool.Get().(*bytes.Buffer)
			defer bufPool.Put(buf)
			buf.Reset()
			buf.Grow(data.Len())
			for _, d := range data {
				buf.Write(d.ReadOnlyData())
			}
			return string(buf.Bytes())
		}},
		{"registered", func() string {
			var m rawMessage
			if err := encoding.GetCodecV2(protoCodecName).Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
			return m.in
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if s := c.read(); len(s) != len(body) {
					b.Fatalf("%d bytes, want %d", len(s), len(body))
				}
			}
		})
	}
}
