package otlpin

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/credentials"
)

// The small-DATA-frame guard (issue #14).
//
// grpc keeps every DATA frame of a message it reads as its own buffer
// (below 1 KiB a plain []byte behind a mem.Buffer, plus its slot in the
// stream's queue and in the message's BufferSlice), so a message sent as
// 1-byte frames costs ~23 bytes of memory per byte: +186 MiB of peak RSS
// for one 8 MiB message, against the ~16 MiB its stream reserves. A padded
// frame is worse: grpc keeps the whole frame's allocation for the data in
// it. No grpc option prevents either.
//
// So the server's connections follow the HTTP/2 frame headers of what the
// client sends (the plaintext, after TLS) before grpc reads them: per
// stream, its DATA frames, their data bytes and their padding. Once a
// stream has sent more than smallFramesFree DATA frames, its data must
// outweigh its padding plus smallFrameFloor bytes per frame (without
// padding: a mean of at least smallFrameFloor bytes a frame), or the
// connection's next Read fails: grpc closes the connection and frees what
// it held of its streams. The bookkeeping and padding grpc holds for a
// stream's frames then stay below its data (past smallFramesFree frames'
// worth). Not counted: grpc's buffer pool rounds frames of 1–4 KiB up to
// 4 KiB and of 4–16 KiB up to 16 KiB (at most 4× the data).
//
// Legit senders never come near it: grpc-go, grpc-java (netty), grpcio
// (C core) and OTel exporters send DATA frames of up to 16 KiB, split
// smaller only where a flow-control window ends (a few per window update,
// each of which grants at least 16 KiB here); a stream of more than 64
// frames carries over 1 MiB. Unary requests each have their own stream, so
// a connection of many small requests is never judged as one stream.
const (
	smallFramesFree = 64  // DATA frames a stream may send before the floor applies
	smallFrameFloor = 512 // data bytes per DATA frame a stream must keep above that
)

// smallFramesError is why a connection was closed; it names no credentials.
type smallFramesError struct {
	stream               uint32
	frames, data, padded uint64
}

func (e *smallFramesError) Error() string {
	return fmt.Sprintf("HTTP/2 stream %d sent %d DATA frames holding %d data bytes and %d bytes of padding: under %d data bytes a frame, too small to buffer",
		e.stream, e.frames, e.data, e.padded, smallFrameFloor)
}

// streamFrames counts one stream's DATA frames.
type streamFrames struct {
	frames, data, padded uint64
}

// frameFollower follows the HTTP/2 frames of a client's byte stream: the
// 24-byte client preface, then 9-byte frame headers whose payloads it
// skips (it reads only the pad length of a padded DATA frame). It does not
// validate: grpc parses the same bytes and closes the connection on a
// protocol error.
type frameFollower struct {
	skip int     // bytes to pass before the next frame header (a payload, or the preface)
	hdr  [9]byte // a frame header split across reads
	hdrN int

	// A padded DATA frame whose pad length (its first payload byte) is next.
	padPending bool
	padStream  uint32
	padLength  uint32 // the frame's payload length
	padEnd     bool

	// The counts of the stream of the last DATA frame (0: none, or it
	// ended), kept out of the map so that a message's frames in a row cost
	// no map operation; the map may hold an older copy of it.
	cur  uint32
	curN streamFrames
	// The DATA frames of the other streams that have not ended (END_STREAM
	// or RST_STREAM from the client); at most maxStreams: past that one is
	// forgotten at random (streams the server ended may never end here).
	streams    map[uint32]streamFrames
	maxStreams int
}

func newFrameFollower(maxStreams int) *frameFollower {
	return &frameFollower{skip: len(http2.ClientPreface), maxStreams: maxStreams}
}

// follow takes the next bytes the client sent; an error ends the connection.
func (f *frameFollower) follow(p []byte) error {
	for len(p) > 0 {
		if f.padPending {
			f.padPending = false
			pad := uint32(p[0])
			p = p[1:]
			data := uint32(0)
			if f.padLength > pad {
				data = f.padLength - 1 - pad
			}
			if err := f.dataFrame(f.padStream, data, f.padLength-data, f.padEnd); err != nil {
				return err
			}
			continue
		}
		if f.skip > 0 {
			if len(p) <= f.skip {
				f.skip -= len(p)
				return nil
			}
			p = p[f.skip:]
			f.skip = 0
		}
		var h []byte
		if f.hdrN == 0 && len(p) >= len(f.hdr) {
			h, p = p[:len(f.hdr)], p[len(f.hdr):]
		} else {
			k := copy(f.hdr[f.hdrN:], p)
			f.hdrN += k
			p = p[k:]
			if f.hdrN < len(f.hdr) {
				return nil
			}
			h, f.hdrN = f.hdr[:], 0
		}
		length := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
		typ, flags := http2.FrameType(h[3]), http2.Flags(h[4])
		stream := binary.BigEndian.Uint32(h[5:]) & (1<<31 - 1)
		f.skip = int(length)
		switch typ {
		case http2.FrameData:
			end := flags.Has(http2.FlagDataEndStream)
			if flags.Has(http2.FlagDataPadded) && length > 0 {
				f.padPending, f.padStream, f.padLength, f.padEnd = true, stream, length, end
				f.skip--
				continue
			}
			if err := f.dataFrame(stream, length, 0, end); err != nil {
				return err
			}
		case http2.FrameHeaders:
			if flags.Has(http2.FlagHeadersEndStream) {
				f.ended(stream)
			}
		case http2.FrameRSTStream:
			f.ended(stream)
		}
	}
	return nil
}

// ended forgets a stream the client ended.
func (f *frameFollower) ended(stream uint32) {
	if stream == f.cur {
		f.cur, f.curN = 0, streamFrames{}
	}
	if len(f.streams) > 0 {
		delete(f.streams, stream)
	}
}

// dataFrame counts a DATA frame of data bytes and padded bytes of padding
// (with the pad length) on stream.
func (f *frameFollower) dataFrame(stream, data, padded uint32, end bool) error {
	if stream == 0 { // a protocol error grpc answers
		return nil
	}
	if stream != f.cur {
		c, seen := f.streams[stream]
		if !seen && end {
			return nil // a stream's only DATA frame: nothing to remember
		}
		if f.cur != 0 {
			f.park()
		}
		f.cur, f.curN = stream, c
	}
	c := &f.curN
	c.frames++
	c.data += uint64(data)
	c.padded += uint64(padded)
	if c.frames > smallFramesFree && c.padded+smallFrameFloor*c.frames > c.data {
		return &smallFramesError{stream: stream, frames: c.frames, data: c.data, padded: c.padded}
	}
	if end {
		f.ended(stream)
	}
	return nil
}

// park puts the current stream's counts in the map.
func (f *frameFollower) park() {
	if f.streams == nil {
		f.streams = make(map[uint32]streamFrames)
	}
	if _, ok := f.streams[f.cur]; !ok && len(f.streams) >= f.maxStreams {
		for k := range f.streams { // map order: a random stream
			delete(f.streams, k)
			break
		}
	}
	f.streams[f.cur] = f.curN
}

// remembered is how many streams the follower holds counts of.
func (f *frameFollower) remembered() int {
	n := len(f.streams)
	if _, ok := f.streams[f.cur]; f.cur != 0 && !ok {
		n++
	}
	return n
}

// frameGuardConn is a server connection whose reads pass a frameFollower.
type frameGuardConn struct {
	net.Conn
	f       *frameFollower
	err     error
	refused func(net.Conn, *smallFramesError)
}

func (c *frameGuardConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if ferr := c.f.follow(p[:n]); ferr != nil {
			c.err = ferr
			if e, ok := ferr.(*smallFramesError); ok && c.refused != nil {
				c.refused(c.Conn, e)
			}
			return 0, ferr
		}
	}
	return n, err
}

// frameGuardCreds are the server's transport credentials (TLS, or
// insecure) with each connection wrapped in a frameGuardConn after the
// handshake, so that the guard sees the plaintext and the AuthInfo (the
// client certificate for mTLS) stays the handshake's.
type frameGuardCreds struct {
	credentials.TransportCredentials
	maxStreams int
	refused    func(net.Conn, *smallFramesError)
}

func (c frameGuardCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return conn, info, err
	}
	return &frameGuardConn{Conn: conn, f: newFrameFollower(c.maxStreams), refused: c.refused}, info, nil
}

func (c frameGuardCreds) Clone() credentials.TransportCredentials {
	return frameGuardCreds{TransportCredentials: c.TransportCredentials.Clone(), maxStreams: c.maxStreams, refused: c.refused}
}
