package kafka

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLZ4FramesHeader checks the fixed frame header against pierrec's
// writer configured the same way (4 MiB blocks, no checksums).
func TestLZ4FramesHeader(t *testing.T) {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(lz4.BlockSizeOption(lz4.Block4Mb), lz4.ChecksumOption(false), lz4.BlockChecksumOption(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes()[:len(lz4Header)]; !bytes.Equal(got, lz4Header[:]) {
		t.Fatalf("header %x, pierrec writes %x", lz4Header, got)
	}
}

// TestLZ4FramesDecode round-trips compressible, incompressible, empty and
// multi-block inputs through pierrec's frame reader and franz-go's
// decompressor (what consumers use).
func TestLZ4FramesDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := []byte(strings.Repeat(`{"name":"read_file","arguments":{"path":"/etc/hosts"}} `, 20000))
	inputs := map[string][]byte{
		"empty":       {},
		"one":         {'x'},
		"text":        text,
		"random":      random(300 << 10),
		"multi-block": append(bytes.Repeat(text, 5), random(100)...), // > 4 MiB
		"mixed-last":  append(bytes.Repeat([]byte("ab"), lz4MaxBlock/2), random(5000)...),
	}
	f := newLZ4Frames()
	dec := kgo.DefaultDecompressor()
	var dst bytes.Buffer
	for name, in := range inputs {
		out, codec := f.Compress(&dst, in)
		if codec != kgo.CodecLz4 {
			t.Fatalf("%s: codec %v", name, codec)
		}
		got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(out)))
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%s: pierrec reader: err %v, equal %v (%d vs %d bytes)", name, err, bytes.Equal(got, in), len(got), len(in))
		}
		got, err = dec.Decompress(bytes.Clone(out), kgo.CodecLz4)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%s: franz-go decompressor: err %v, equal %v", name, err, bytes.Equal(got, in))
		}
		if name == "text" && len(out) > len(in)/4 {
			t.Fatalf("text compressed to %d of %d bytes", len(out), len(in))
		}
	}
}

func BenchmarkLZ4Frames(b *testing.B) {
	src := []byte(strings.Repeat(`{"event_id":"0123456789abcdef","tool":"read_file","arguments":{"path":"/srv/data/report-2026.csv","limit":100},"result":"ok"} `, 7000))
	var dst bytes.Buffer
	b.Run("mcpwatch", func(b *testing.B) {
		f := newLZ4Frames()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			f.Compress(&dst, src)
		}
	})
	b.Run("franz-go", func(b *testing.B) {
		c, err := kgo.DefaultCompressor(kgo.Lz4Compression())
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			dst.Reset()
			c.Compress(&dst, src)
		}
	})
}
