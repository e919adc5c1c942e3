package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// nestedRequest is an OTLP trace request of at most max bytes holding one
// span whose attribute value nests as deep as fits: AnyValue{array_value:
// ArrayValue{values: [AnyValue{…}]}}, ~9.5 bytes a level, ~880 000 levels
// in 8 MiB (issue #14). Built inside out, in linear time.
func nestedRequest(max int) []byte {
	type level struct{ outer, inner int } // the two lengths of a level's prefix
	var levels []level
	size := 3 // the innermost AnyValue{string_value: "x"}
	for {
		inner := size
		outer := 1 + protowire.SizeVarint(uint64(inner)) + inner // ArrayValue
		next := 1 + protowire.SizeVarint(uint64(outer)) + outer  // AnyValue
		if next+64 > max {
			break
		}
		levels = append(levels, level{outer, inner})
		size = next
	}
	var av []byte
	av = make([]byte, 0, size)
	for i := len(levels) - 1; i >= 0; i-- {
		av = protowire.AppendTag(av, 5, protowire.BytesType) // AnyValue.array_value
		av = protowire.AppendVarint(av, uint64(levels[i].outer))
		av = protowire.AppendTag(av, 1, protowire.BytesType) // ArrayValue.values
		av = protowire.AppendVarint(av, uint64(levels[i].inner))
	}
	av = append(av, 0x0a, 1, 'x') // AnyValue.string_value = "x"
	wrap := func(num protowire.Number, b []byte, head ...byte) []byte {
		out := append(head, protowire.AppendTag(nil, num, protowire.BytesType)...)
		return append(protowire.AppendVarint(out, uint64(len(b))), b...)
	}
	kv := wrap(2, av, 0x0a, 1, 'd') // KeyValue{key: "d", value}
	span := wrap(9, kv)             // Span.attributes
	scope := wrap(2, span)          // ScopeSpans.spans
	rs := wrap(2, scope)            // ResourceSpans.scope_spans
	return wrap(1, rs)              // ExportTraceServiceRequest.resource_spans
}

// rawCodec sends a request's bytes as they are (the test must not decode
// 880 000 levels itself).
type rawBytesCodec struct{}

func (rawBytesCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawBytesCodec) Unmarshal(b []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), b...)
	return nil
}
func (rawBytesCodec) Name() string { return "proto" }

var _ encoding.Codec = rawBytesCodec{}

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}

// TestSecurityPreAuthAmplification (issue #14 item 1): the 8 MB request of
// ~880 000 nested values, four at a time, without a token over gRPC and
// HTTP, then with one. Measured as the issue measured it: the peak RSS
// (VmHWM) of a real collector process, before and after.
func TestSecurityPreAuthAmplification(t *testing.T) {
	tg, grpcAddr, httpAddr, _ := startSecurityCollector(t, "", "")
	body := nestedRequest(8 << 20)
	if len(body) > 8<<20 || len(body) < 8<<20-1024 {
		t.Fatalf("request of %d bytes, want just under 8 MiB", len(body))
	}

	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawBytesCodec{}), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	grpcSend := func(token string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		var resp []byte
		return cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &body, &resp)
	}
	httpSend := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1 // the server may close the connection while the body is still being sent
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	fourAtOnce := func(send func()) {
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); send() }()
		}
		wg.Wait()
	}

	base := peakRSS(t, tg.pid)
	fourAtOnce(func() {
		if err := grpcSend(""); status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC without a token: %v, want UNAUTHENTICATED", err)
		}
	})
	fourAtOnce(func() {
		if code := httpSend(""); code != http.StatusUnauthorized && code != -1 {
			t.Errorf("HTTP without a token: %d, want 401", code)
		}
	})
	unauth := peakRSS(t, tg.pid)
	t.Logf("peak RSS: %d MiB at start, %d MiB after 8 unauthenticated 8 MB requests", base>>20, unauth>>20)
	if unauth-base > 50<<20 {
		t.Errorf("unauthenticated requests grew the peak RSS by %d MiB, want < 50", (unauth-base)>>20)
	}

	fourAtOnce(func() {
		err := grpcSend(testToken)
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "nests deeper than") {
			t.Errorf("gRPC with a token: %v, want INVALID_ARGUMENT naming the depth", err)
		}
	})
	fourAtOnce(func() {
		if code := httpSend(testToken); code != http.StatusBadRequest {
			t.Errorf("HTTP with a token: %d, want 400", code)
		}
	})
	authed := peakRSS(t, tg.pid)
	t.Logf("peak RSS: %d MiB after 8 authenticated 8 MB requests", authed>>20)
	// Each request is held as sent (8 MiB) and copied once; nothing decodes it.
	if authed-base > 200<<20 {
		t.Errorf("authenticated requests grew the peak RSS by %d MiB, want < 200 (8 × 8 MiB bodies, a copy each, and GC headroom)", (authed-base)>>20)
	}
}
