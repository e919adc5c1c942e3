package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
)

// tinyFrames is the outcome of a rawExport.
type tinyFrames struct {
	sent     int           // message bytes (with grpc's 5-byte prefix) written
	answered bool          // the server ended the stream with trailers
	status   string        // their grpc-status
	closed   bool          // the server closed the connection
	took     time.Duration // until the connection closed or the answer came
}

// rawExport sends an OTLP/gRPC trace export of msg on a new connection
// with a raw HTTP/2 client (golang.org/x/net/http2's Framer), the message
// (with its 5-byte gRPC prefix) as DATA frames of frame bytes each, within
// the flow-control windows the server grants, and waits until the server
// answers or closes the connection (at most limit).
func rawExport(t *testing.T, addr, token string, msg []byte, frame int, limit time.Duration) tinyFrames {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(limit))
	start := time.Now()

	bw := bufio.NewWriterSize(conn, 64<<10)
	fr := http2.NewFramer(bw, bufio.NewReader(conn))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var (
		mu         sync.Mutex // the framer's writer and the windows
		cond       = sync.NewCond(&mu)
		connWin    = int64(65535)
		streamWin  = int64(65535)
		initialWin = int64(65535)
		res        tinyFrames
		ended      bool
	)
	end := func(answered bool, status string) {
		mu.Lock()
		if !ended {
			ended, res.answered, res.closed, res.took = true, answered, !answered, time.Since(start)
			res.status = status
		}
		cond.Broadcast()
		mu.Unlock()
	}

	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", addr},
		{":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export"},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"authorization", "Bearer " + token}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	mu.Lock()
	_, _ = bw.WriteString(http2.ClientPreface)
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	err = bw.Flush()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				end(false, "")
				return
			}
			mu.Lock()
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
						streamWin += int64(v) - initialWin
						initialWin = int64(v)
					}
					_ = fr.WriteSettingsAck()
					_ = bw.Flush()
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else {
					streamWin += int64(f.Increment)
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
					_ = bw.Flush()
				}
			}
			cond.Broadcast()
			mu.Unlock()
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if f.StreamEnded() {
					end(true, f.PseudoValue("status")+" grpc-status "+headerValue(f, "grpc-status")+" "+headerValue(f, "grpc-message"))
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				end(false, "")
			}
		}
	}()

	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	body = append(body, msg...)
	mu.Lock()
	for len(body) > 0 && !ended {
		if connWin <= 0 || streamWin <= 0 {
			if err := bw.Flush(); err != nil {
				break
			}
			cond.Wait()
			continue
		}
		n := int(min(int64(frame), int64(len(body)), connWin, streamWin))
		if err := fr.WriteData(1, n == len(body), body[:n]); err != nil {
			break
		}
		body, res.sent = body[n:], res.sent+n
		connWin, streamWin = connWin-int64(n), streamWin-int64(n)
	}
	_ = bw.Flush()
	for !ended { // the answer, the server closing, or the deadline
		cond.Wait()
	}
	mu.Unlock()
	_ = conn.Close()
	<-readerDone
	return res
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// paddedExport is an OTLP trace export request of size bytes: one MCP
// span and an unknown field (which receivers skip) filling the rest.
func paddedExport(t *testing.T, size int) []byte {
	b := protoBody(t, mcpTraces(1, 10))
	pad := size - len(b) - 8
	b = protowire.AppendTag(b, 1000, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(pad))
	b = append(b, make([]byte, pad)...)
	if len(b) > size {
		t.Fatalf("request of %d bytes, want at most %d", len(b), size)
	}
	return b
}

// scrapeCounter reads one labelled sample (name{labels}) from /metrics; 0 when absent.
func scrapeCounter(t *testing.T, url, sample string) float64 {
	t.Helper()
	code, body := httpGet(t, url)
	if code != 200 {
		t.Fatalf("GET %s: %d", url, code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestSecurityGRPCTinyDataFrames (issue #14): grpc keeps every DATA frame
// of a message it reads as its own buffer, so an 8 MiB message sent as
// 1-byte frames used to cost ~23 bytes of memory per byte (+186 MiB of
// peak RSS for one). Three connections of a valid tenant now each send
// such a message: the collector closes each connection after a few dozen
// frames, its peak RSS grows by less than 50 MiB, the refusals are
// counted, and a normal grpc-go OTLP export right after succeeds.
func TestSecurityGRPCTinyDataFrames(t *testing.T) {
	tg, grpcAddr, _, adminAddr := startSecurityCollector(t, "", "")
	metrics := "http://" + adminAddr + "/metrics"
	msg := paddedExport(t, 8<<20-64)

	base := peakRSS(t, tg.pid)
	const conns = 3 // as many 8 MiB messages as a tenant's share lets grpc read at once
	results := make([]tinyFrames, conns)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = rawExport(t, grpcAddr, testToken, msg, 1, 90*time.Second)
		}()
	}
	wg.Wait()
	peak := peakRSS(t, tg.pid)
	for i, r := range results {
		t.Logf("connection %d: %d bytes sent as 1-byte frames in %v, answered %v %q, closed %v", i, r.sent, r.took.Round(time.Millisecond), r.answered, r.status, r.closed)
		// What was sent counts what the client's socket buffers took in
		// before the close reached it (~10 bytes of wire a byte).
		if !r.closed || r.sent > len(msg)/4 || r.took > 10*time.Second {
			t.Errorf("connection %d sending 1-byte DATA frames: %d of %d bytes sent in %v, answered %v; want the connection closed within the first quarter and 10 s",
				i, r.sent, len(msg)+5, r.took, r.answered)
		}
	}
	t.Logf("peak RSS +%d MiB for %d 8 MiB messages in 1-byte DATA frames", (peak-base)>>20, conns)
	if peak-base > 50<<20 {
		t.Errorf("peak RSS grew by %d MiB, want < 50", (peak-base)>>20)
	}
	if n := scrapeCounter(t, metrics, `mcpwatch_collector_rejected_total{reason="small_data_frames"}`); n != conns {
		t.Errorf("rejected_total{reason=small_data_frames} = %v, want %d", n, conns)
	}

	// The same message in 16 KiB frames is read (and accepted), as is a
	// normal export from grpc-go.
	r := rawExport(t, grpcAddr, testToken, msg, 16<<10, 60*time.Second)
	t.Logf("the message in 16 KiB frames: answered in %v", r.took.Round(time.Millisecond))
	if !r.answered || !strings.Contains(r.status, "grpc-status 0 ") {
		t.Errorf("the message in 16 KiB DATA frames: %d bytes sent, answered %v %q; want grpc-status 0", r.sent, r.answered, r.status)
	}
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testToken), 30*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(mcpTraces(10, 100))); err != nil {
		t.Errorf("a normal gRPC export after the tiny frames: %v", err)
	}
}
