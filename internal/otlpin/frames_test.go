package otlpin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// h2 writes what an HTTP/2 client sends, with x/net's Framer.
type h2 struct {
	buf bytes.Buffer
	fr  *http2.Framer
	t   *testing.T
}

func newH2(t *testing.T) *h2 {
	h := &h2{t: t}
	h.buf.WriteString(http2.ClientPreface)
	h.fr = http2.NewFramer(&h.buf, nil)
	h.check(h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}))
	return h
}

func (h *h2) check(err error) {
	if err != nil {
		h.t.Fatal(err)
	}
}

// headers opens stream id with a header block split into a HEADERS and a
// CONTINUATION frame.
func (h *h2) headers(id uint32) {
	block := bytes.Repeat([]byte{0x82}, 40) // :method GET, indexed; the follower never reads it
	h.check(h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:25]}))
	h.check(h.fr.WriteContinuation(id, true, block[25:]))
}

func (h *h2) data(id uint32, n int, end bool) {
	h.check(h.fr.WriteData(id, end, make([]byte, n)))
}

func (h *h2) control() {
	h.check(h.fr.WritePing(false, [8]byte{1, 2, 3}))
	h.check(h.fr.WriteSettingsAck())
	h.check(h.fr.WriteWindowUpdate(0, 1<<16))
	h.check(h.fr.WritePriority(7, http2.PriorityParam{StreamDep: 1, Weight: 3}))
}

// follow feeds b to a new follower in reads of the given sizes (the rest
// in one), and says at which byte it refused the connection (-1: never).
func follow(b []byte, reads ...int) (int, *frameFollower) {
	f := newFrameFollower(grpcMaxStreamsPerConn)
	off := 0
	for len(b) > off {
		n := len(b) - off
		if len(reads) > 0 {
			n, reads = min(reads[0], n), reads[1:]
		}
		if err := f.follow(b[off : off+n]); err != nil {
			var se *smallFramesError
			if !errors.As(err, &se) {
				panic(err)
			}
			return off + n, f
		}
		off += n
	}
	return -1, f
}

// TestFrameFollowerSplitReads: a stream sends smallFramesFree small DATA
// frames (some padded), interleaved with other streams, HEADERS with
// CONTINUATION, PING, SETTINGS, WINDOW_UPDATE, PRIORITY and RST_STREAM,
// then one more: the connection is refused exactly when that frame's
// header is in (after its pad length when padded), however the bytes are
// split across reads: at every byte boundary in two reads, and a byte at a
// time.
func TestFrameFollowerSplitReads(t *testing.T) {
	for _, padded := range []bool{false, true} {
		h := newH2(t)
		h.headers(1)
		h.headers(3)
		h.headers(5)
		for i := 0; i < smallFramesFree; i++ {
			if padded && i%2 == 1 {
				h.check(h.fr.WriteDataPadded(1, false, []byte{1}, make([]byte, 40)))
			} else {
				h.data(1, 3, false)
			}
			switch i % 8 {
			case 0:
				h.control()
			case 3:
				h.data(3, 16<<10, false) // a legit stream beside it
			case 5:
				h.data(5, 2, false)
				h.check(h.fr.WriteRSTStream(5, http2.ErrCodeCancel))
				h.headers(5 + 2*uint32(i))
			}
		}
		h.control()
		prefix := h.buf.Len()
		var want int
		if padded {
			h.check(h.fr.WriteDataPadded(1, false, []byte{1}, make([]byte, 40)))
			want = prefix + 9 + 1 // the header and the pad length
		} else {
			h.data(1, 3, false)
			want = prefix + 9
		}
		b := h.buf.Bytes()

		if at, _ := follow(b); at != len(b) {
			t.Fatalf("padded %v: one read of %d bytes refused at %d, want refused", padded, len(b), at)
		}
		if at, _ := follow(b[:want-1]); at != -1 {
			t.Fatalf("padded %v: refused at byte %d of the first %d, before the frame past the floor", padded, at, want-1)
		}
		for k := 1; k < len(b); k++ {
			at, _ := follow(b, k)
			wantAt := len(b)
			if k >= want {
				wantAt = k
			}
			if at != wantAt {
				t.Fatalf("padded %v, reads of %d and %d bytes: refused after byte %d, want %d", padded, k, len(b)-k, at, wantAt)
			}
		}
		ones := make([]int, len(b))
		for i := range ones {
			ones[i] = 1
		}
		if at, _ := follow(b, ones...); at != want {
			t.Fatalf("padded %v, a byte a read: refused after byte %d, want %d", padded, at, want)
		}
	}
}

// TestFrameFollowerLegitSenders: what grpc clients send is never refused,
// and streams are forgotten when they end.
func TestFrameFollowerLegitSenders(t *testing.T) {
	// 1000 unary requests of 200 bytes each on one connection, as grpc-go
	// sends them (one DATA frame with END_STREAM) and as clients that
	// half-close with an empty DATA frame do; some interleaved.
	h := newH2(t)
	for i := uint32(0); i < 1000; i++ {
		id := 1 + 2*i
		h.headers(id)
		if i%2 == 0 {
			h.data(id, 205, true)
			continue
		}
		h.data(id, 205, false)
		if i%10 == 1 {
			h.control()
		}
		h.data(id, 0, true)
	}
	if at, f := follow(h.buf.Bytes(), 32<<10); at != -1 || f.remembered() != 0 || f.hdrN != 0 || f.skip != 0 {
		t.Errorf("1000 unary requests of 200 bytes: refused at %d, %d streams remembered, hdrN %d, skip %d; want none", at, f.remembered(), f.hdrN, f.skip)
	}

	// An 8 MiB message in 16 KiB frames, with a few small frames where
	// flow-control windows ended, and three 8 MiB messages in 1 KiB frames
	// (netty's smallest share of a window) interleaved.
	h = newH2(t)
	h.headers(1)
	h.data(1, 5, false) // the gRPC prefix on its own
	for i := 0; i < 512; i++ {
		if i%16 == 0 {
			h.data(1, 7, false)
			h.data(1, 1, false)
		}
		h.data(1, 16<<10-8, false)
	}
	h.data(1, 100, true)
	for _, id := range []uint32{3, 5, 7} {
		h.headers(id)
	}
	for i := 0; i < 8<<10; i++ {
		for _, id := range []uint32{3, 5, 7} {
			h.data(id, 1<<10, i == 8<<10-1)
		}
	}
	if at, f := follow(h.buf.Bytes(), 32<<10); at != -1 || f.remembered() != 0 {
		t.Errorf("8 MiB messages in 16 KiB and 1 KiB frames: refused at %d, %d streams remembered; want none", at, f.remembered())
	}

	// A stream reset by the client, and one ended by trailers, are forgotten.
	h = newH2(t)
	h.headers(1)
	h.data(1, 100, false)
	h.data(1, 100, false)
	h.check(h.fr.WriteRSTStream(1, http2.ErrCodeCancel))
	h.headers(3)
	h.data(3, 100, false)
	h.check(h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: []byte{0x82}, EndHeaders: true, EndStream: true}))
	if _, f := follow(h.buf.Bytes()); f.remembered() != 0 {
		t.Errorf("%d streams remembered after RST_STREAM and trailers, want 0", f.remembered())
	}
}

// TestFrameFollowerBounded: streams the server ended may never end on the
// client's side; the follower remembers at most grpcMaxStreamsPerConn.
func TestFrameFollowerBounded(t *testing.T) {
	h := newH2(t)
	for i := uint32(0); i < 5000; i++ {
		h.headers(1 + 2*i)
		h.data(1+2*i, 16<<10, false)
	}
	at, f := follow(h.buf.Bytes(), 32<<10)
	if at != -1 || f.remembered() > grpcMaxStreamsPerConn+1 || f.remembered() < grpcMaxStreamsPerConn {
		t.Errorf("5000 streams left open: refused at %d, %d remembered; want none refused, %d (+1) remembered", at, f.remembered(), grpcMaxStreamsPerConn)
	}
}

// TestFrameFollowerPadding: padding is not data (grpc keeps a padded
// frame's whole allocation for the data in it): frames of 1 data byte and
// 1000 of padding are refused, as are frames whose padding outweighs their
// data; moderately padded 16 KiB frames are not.
func TestFrameFollowerPadding(t *testing.T) {
	for _, c := range []struct {
		data, pad int
		refused   bool
	}{{1, 255, true}, {4000, 255, false}, {200, 0, true}, {600, 0, false}, {700, 255, true}, {16000, 255, false}} {
		h := newH2(t)
		h.headers(1)
		for i := 0; i < 4*smallFramesFree; i++ {
			h.check(h.fr.WriteDataPadded(1, false, make([]byte, c.data), make([]byte, c.pad)))
		}
		if at, _ := follow(h.buf.Bytes(), 32<<10); (at != -1) != c.refused {
			t.Errorf("frames of %d data bytes and %d of padding: refused at %d, want refused %v", c.data, c.pad, at, c.refused)
		}
	}
}

// syncBuffer is a log sink written by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tenantConsumer records the tenants of the requests it gets.
type tenantConsumer struct {
	mu      sync.Mutex
	tenants []string
}

func (c *tenantConsumer) ConsumeTraces(_ context.Context, tenant string, _ ptrace.Traces) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants = append(c.tenants, tenant)
	return Result{}, nil
}

func (c *tenantConsumer) ConsumeLogs(context.Context, string, plog.Logs) (Result, error) {
	return Result{}, nil
}

// writeTestCerts writes a CA, a server certificate for 127.0.0.1 and a
// client certificate for cn into dir; it returns the client's TLS config.
func writeTestCerts(t *testing.T, dir, cn string) *tls.Config {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth)
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write("ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", srvDER)
	write("server.key", "EC PRIVATE KEY", keyDER)
	cliDER, cliKey := issue(3, cn, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}}}
}

// TestSmallDataFramesCloseConnection: over plaintext and over TLS (the
// guard follows the plaintext inside TLS), a stream of a valid tenant that
// sends 100 DATA frames of 1 byte has its connection closed, counted in
// rejected_total{reason="small_data_frames"} and logged once without the
// token; a grpc-go export over the same server then succeeds, and over
// mTLS the client certificate still names its tenant.
func TestSmallDataFramesCloseConnection(t *testing.T) {
	const token = "s3cret-token-value-0123456789"
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plaintext", true: "tls"}[useTLS], func(t *testing.T) {
			logs := &syncBuffer{}
			cons := &tenantConsumer{}
			cfg := Config{GRPC: ListenerConfig{Endpoint: "127.0.0.1:0"}, HTTP: ListenerConfig{Endpoint: "-"},
				Auth:   AuthConfig{Tokens: []TokenConfig{{Tenant: "acme", Token: token}}},
				Limits: LimitsConfig{MaxRequestBytes: 1 << 20}}
			var clientTLS *tls.Config
			if useTLS {
				dir := t.TempDir()
				clientTLS = writeTestCerts(t, dir, "gw")
				cfg.Auth.ClientCertTenants = map[string]string{"gw": "beta"}
				cfg.GRPC.TLS = ServerTLSConfig{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key"), ClientCAFile: filepath.Join(dir, "ca.pem")}
			}
			r, err := New(cfg, cons, slog.New(slog.NewJSONHandler(logs, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = r.Shutdown(context.Background()) }()

			var conn net.Conn
			if useTLS {
				tc := clientTLS.Clone()
				tc.NextProtos = []string{"h2"}
				conn, err = tls.Dial("tcp", r.GRPCAddr(), tc)
			} else {
				conn, err = net.Dial("tcp", r.GRPCAddr())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "x"},
				{":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export"},
				{"content-type", "application/grpc"}, {"te", "trailers"}, {"authorization", "Bearer " + token}} {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			h := newH2(t)
			h.check(h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}))
			h.check(h.fr.WriteData(1, false, []byte{0, 0, 0, 1, 0})) // a gRPC prefix announcing 64 KiB
			for i := 0; i < 100; i++ {
				h.data(1, 1, false)
			}
			if _, err := conn.Write(h.buf.Bytes()); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(io.Discard, conn)
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("the connection stayed open after 100 DATA frames of 1 byte")
					}
					break // closed
				}
				if hf, ok := f.(*http2.HeadersFrame); ok {
					t.Fatalf("the server answered stream %d, want the connection closed", hf.StreamID)
				}
			}
			if n := testutil.ToFloat64(r.m.Rejected.WithLabelValues("small_data_frames")); n != 1 {
				t.Errorf("rejected_total{reason=small_data_frames} = %v, want 1", n)
			}
			log := logs.String()
			if strings.Count(log, "DATA frames are too small") != 1 || !strings.Contains(log, `"frames":65`) {
				t.Errorf("want one warning naming the frames, got %q", log)
			}
			if strings.Contains(log, token) {
				t.Errorf("the token is in the log: %q", log)
			}

			creds := insecure.NewCredentials()
			if useTLS {
				creds = credentials.NewTLS(clientTLS)
			}
			cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx := context.Background()
			if !useTLS {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
			}
			td := ptrace.NewTraces()
			td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName(strings.Repeat("x", 100<<10))
			if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
				t.Fatalf("a grpc-go export after the refused connection: %v", err)
			}
			want := map[bool]string{false: "acme", true: "beta"}[useTLS]
			if cons.mu.Lock(); len(cons.tenants) != 1 || cons.tenants[0] != want {
				t.Errorf("tenants %v, want [%s]", cons.tenants, want)
			}
			cons.mu.Unlock()
		})
	}
}

// BenchmarkFrameFollower: the guard's cost per byte a client sends, in
// 32 KiB reads (grpc's read buffer): an 8 MiB message in 16 KiB frames,
// and 1000 unary requests of 200 bytes.
func BenchmarkFrameFollower(b *testing.B) {
	t := &testing.T{}
	big := newH2(t)
	big.headers(1)
	for i := 0; i < 512; i++ {
		big.data(1, 16<<10, i == 511)
	}
	small := newH2(t)
	for i := uint32(0); i < 1000; i++ {
		small.headers(1 + 2*i)
		small.data(1+2*i, 205, true)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{{"16KiBFrames", big.buf.Bytes()}, {"unary200B", small.buf.Bytes()}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.b)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				f := newFrameFollower(grpcMaxStreamsPerConn)
				for p := c.b; len(p) > 0; {
					n := min(len(p), 32<<10)
					if err := f.follow(p[:n]); err != nil {
						b.Fatal(err)
					}
					p = p[n:]
				}
			}
		})
	}
}
