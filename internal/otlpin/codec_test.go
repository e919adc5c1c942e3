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
		var m rawMessage
		if err := c.Unmarshal(splitSlice(body, n), &m); err != nil || !bytes.Equal(m.bytes(), body) {
			t.Fatalf("buffers of %d: err %v, equal %v", n, err, bytes.Equal(m.bytes(), body))
		}
		m.free()
	}
	var m rawMessage
	if err := c.Unmarshal(nil, &m); err != nil || len(m.bytes()) != 0 {
		t.Fatalf("empty: %v %q", err, m.bytes())
	}
	// Not a rawMessage: the delegate decodes (and refuses a non-proto type).
	if err := c.Unmarshal(splitSlice(body, 100), new(int)); err == nil {
		t.Fatal("delegate accepted an *int")
	}
}

// BenchmarkRawCodec: a 350 KB request in 16 KiB receive buffers, through
// rawCodec and through the registered codec (what the server used before).
func BenchmarkRawCodec(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 350<<10/18)
	data := splitSlice(body, 16<<10)
	for _, c := range []struct {
		name string
		c    encoding.CodecV2
	}{{"raw", rawCodec{encoding.GetCodecV2(protoCodecName)}}, {"registered", encoding.GetCodecV2(protoCodecName)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var m rawMessage
				if err := c.c.Unmarshal(data, &m); err != nil || len(m.bytes()) != len(body) {
					b.Fatal(err)
				}
				m.free()
			}
		})
	}
}
