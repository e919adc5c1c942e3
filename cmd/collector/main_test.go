package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const mcpSpanJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"demo"}}]},
"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"tools/call x","kind":2,
"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000100000000",
"attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}},{"key":"gen_ai.tool.name","value":{"stringValue":"x"}}]}]}]}]}`

func freePort(t *testing.T) int {
	p, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunEmbeddedKafka runs the binary's main path with --embedded-kafka
// and a data dir, sends a span, shuts down (as on SIGTERM) with a nil
// error, then restarts on the same dir and finds the event still there.
func TestRunEmbeddedKafka(t *testing.T) {
	dir := t.TempDir()
	kport, hport, gport, aport := freePort(t), freePort(t), freePort(t), freePort(t)
	args := []string{"--embedded-kafka", "--embedded-kafka-dir", dir, fmt.Sprintf("--embedded-kafka-port=%d", kport),
		"--receiver.auth.disabled=true", "--log.level=error",
		fmt.Sprintf("--receiver.http.endpoint=127.0.0.1:%d", hport), fmt.Sprintf("--receiver.grpc.endpoint=127.0.0.1:%d", gport),
		fmt.Sprintf("--admin.endpoint=127.0.0.1:%d", aport), "--readiness_interval=100ms"}
	start := func() (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, args, io.Discard) }()
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", aport))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("collector never became ready")
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cancel, done
	}
	cancel, done := start()
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/traces", hport), "application/json", strings.NewReader(mcpSpanJSON))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("graceful shutdown returned %v", err)
	}

	cancel, done = start()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("second shutdown: %v", err)
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", kport)), kgo.ConsumeTopics("mcpwatch.events.v1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cc := context.WithTimeout(context.Background(), 30*time.Second)
	defer cc()
	fs := cl.PollRecords(ctx, 10)
	if err := ctx.Err(); err != nil {
		t.Fatalf("no record after restart: %v", err)
	}
	evs, err := event.Unmarshal(fs.Records()[0].Value)
	if err != nil || len(evs) != 1 || evs[0].ToolName != "x" || evs[0].Tenant != "default" {
		t.Fatalf("record after restart: %v %+v", err, evs)
	}
}

func TestRunRejectsBadConfigWithEveryError(t *testing.T) {
	err := run(context.Background(), []string{"--kafka.producer.compression=brotli", "--log.level=loud", "--admin.endpoint=nope"}, io.Discard)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{"kafka.brokers", "compression", "log.level", "admin.endpoint", "receiver.auth"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %s:\n%v", w, err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--check-config", "--kafka.brokers=127.0.0.1:1", "--receiver.auth.disabled=true"}, &out); err != nil || !strings.Contains(out.String(), "config ok") {
		t.Errorf("--check-config: %v %q", err, out.String())
	}
}
