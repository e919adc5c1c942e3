package kafka

import (
	"bytes"
	"encoding/binary"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lz4Frames compresses produce batches into one LZ4 frame each, as
// franz-go's default lz4 codec does (fast level), but without the frame's
// optional content checksum (xxh32 over every byte: Kafka's own Java
// producer does not write it either; the record batch has its own CRC) and
// straight from the batch into dst, without the lz4.Writer's block copy.
// Any LZ4 frame reader (Kafka brokers, Java/librdkafka/sarama/franz-go
// consumers) reads it; TestLZ4FramesDecode checks pierrec's reader and
// franz-go's decompressor.
type lz4Frames struct {
	pool sync.Pool // *lz4.Compressor
}

// lz4MaxBlock is the frame's block maximum (4 MiB, BD = 0x70). Produce
// batches are under 1 MB, so a batch is one block.
const lz4MaxBlock = 4 << 20

// lz4Header is the frame header: magic, FLG (version 1, independent blocks,
// no checksums, no content size), BD (4 MiB blocks) and the header checksum
// (second byte of xxh32 over FLG and BD, fixed for these two bytes).
var lz4Header = [...]byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73}

// NewLZ4Compressor returns the lz4 compressor ProducerOpts installs.
func NewLZ4Compressor() kgo.Compressor { return newLZ4Frames() }

func newLZ4Frames() *lz4Frames {
	return &lz4Frames{pool: sync.Pool{New: func() any { return new(lz4.Compressor) }}}
}

// Compress implements kgo.Compressor.
func (f *lz4Frames) Compress(dst *bytes.Buffer, src []byte, _ ...kgo.CompressFlag) ([]byte, kgo.CompressionCodecType) {
	need := len(lz4Header) + 4 // end mark
	for rest := len(src); ; rest -= lz4MaxBlock {
		need += 4 + lz4.CompressBlockBound(min(rest, lz4MaxBlock))
		if rest <= lz4MaxBlock {
			break
		}
	}
	dst.Reset()
	dst.Grow(need)
	out := dst.Bytes()[:need]
	n := copy(out, lz4Header[:])
	c := f.pool.Get().(*lz4.Compressor)
	defer f.pool.Put(c)
	for len(src) > 0 {
		blk := src[:min(len(src), lz4MaxBlock)]
		src = src[len(blk):]
		size := out[n : n+4]
		n += 4
		k, err := c.CompressBlock(blk, out[n:])
		if err != nil || k == 0 || k >= len(blk) {
			// Incompressible: stored as is, flagged by the size's high bit.
			k = copy(out[n:], blk)
			binary.LittleEndian.PutUint32(size, uint32(k)|1<<31)
		} else {
			binary.LittleEndian.PutUint32(size, uint32(k))
		}
		n += k
	}
	binary.LittleEndian.PutUint32(out[n:], 0) // end mark
	n += 4
	return out[:n], kgo.CodecLz4
}
