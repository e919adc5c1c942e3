package collector

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestKafkaUnreachableAtStart(t *testing.T) {
	k := testbed.Kfake(t)
	k.Stop()
	c := startCollector(t, k.Brokers, nil)

	code, body := httpGet(t, "http://"+c.AdminAddr()+"/healthz")
	if code != http.StatusOK {
		t.Errorf("/healthz = %d while serving", code)
	}
	code, body = httpGet(t, "http://"+c.AdminAddr()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "kafka") {
		t.Errorf("/readyz = %d %q, want 503 naming kafka", code, body)
	}
	r := postTraces(t, c, mcpTraces(3, 10))
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("HTTP with Kafka down: %d Retry-After=%q, want 503 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
	_, err := grpcExport(t, c, mcpTraces(3, 10), testToken)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC with Kafka down: %v, want UNAVAILABLE", err)
	}
	st, _ := status.FromError(err)
	if len(st.Details()) == 0 {
		t.Errorf("gRPC UNAVAILABLE without RetryInfo")
	}

	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c)
	td := mcpTraces(5, 10)
	if r := postTraces(t, c, td); r.code != http.StatusOK {
		t.Fatalf("after Kafka came up: %d %s", r.code, r.body)
	}
	got := map[string]bool{}
	for _, e := range decodeAll(t, readTopic(t, k.Brokers, testTopic)) {
		got[e.TraceID+"/"+e.SpanID] = true
	}
	for _, key := range spanKeys(td) {
		if !got[key] {
			t.Errorf("accepted span %s not in Kafka", key)
		}
	}
}

// TestBrokerRestartLosesNothing streams requests, stops the broker in the
// middle and restarts it. Senders retry every non-200 answer (as OTLP
// exporters do); afterwards every span the collector answered 200 for must
// be in the topic, and nothing else.
func TestBrokerRestartLosesNothing(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.ProduceTimeout = 2 * time.Second })
	waitReady(t, c)

	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		badCodes = map[int]int{}
		errs     int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				td := mcpTraces(50, 100)
				body := protoBody(t, td)
				for { // retry until accepted, like an OTLP exporter
					r := post(t, c, "/v1/traces", "application/x-protobuf", body, authHeader())
					if r.code == http.StatusOK {
						mu.Lock()
						for _, key := range spanKeys(td) {
							accepted[key] = true
						}
						mu.Unlock()
						break
					}
					mu.Lock()
					errs++
					if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
						badCodes[r.code]++
					}
					mu.Unlock()
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	waitFor(t, "some accepted requests", func() bool { mu.Lock(); defer mu.Unlock(); return len(accepted) >= 500 })
	k.Stop()
	waitFor(t, "senders to see Kafka down", func() bool { mu.Lock(); defer mu.Unlock(); return errs >= 3 })
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := len(accepted)
	mu.Unlock()
	waitFor(t, "accepted requests after restart", func() bool { mu.Lock(); defer mu.Unlock(); return len(accepted) >= before+500 })
	close(stop)
	wg.Wait()

	if len(badCodes) > 0 {
		t.Errorf("non-retryable answers during the outage: %v", badCodes)
	}
	inTopic := map[string]bool{}
	ids := map[string]bool{}
	records := 0
	for _, e := range decodeAll(t, readTopic(t, k.Brokers, testTopic)) {
		inTopic[e.TraceID+"/"+e.SpanID] = true
		ids[e.EventID] = true
		records++
	}
	if len(ids) != len(accepted) {
		t.Errorf("distinct event_ids in topic %d, accepted %d", len(ids), len(accepted))
	}
	t.Logf("%d records in topic for %d distinct events (duplicates from retried requests are expected)", records, len(ids))
	missing := 0
	for key := range accepted {
		if !inTopic[key] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d accepted spans are not in Kafka", missing, len(accepted))
	}
	if len(inTopic) != len(accepted) {
		t.Errorf("distinct events in topic %d, accepted %d", len(inTopic), len(accepted))
	}
	t.Logf("accepted %d spans, %d retryable errors during the outage, %d distinct in topic", len(accepted), errs, len(inTopic))
}

// waitFor polls cond with a generous upper bound (a hang guard, not a timed
// assertion).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowKafkaAnswers503 makes the broker hold every produce request: the
// sender must get a retryable error at the produce deadline, never hang.
func TestSlowKafkaAnswers503(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) { cfg.ProduceTimeout = time.Second })
	waitReady(t, c)
	release := make(chan struct{})
	cl := k.Cluster()
	cl.ControlKey(0, func(kmsg.Request) (kmsg.Response, error, bool) { // 0 = Produce
		cl.KeepControl()
		cl.SleepControl(func() { <-release })
		return nil, nil, false
	})
	r := postTraces(t, c, mcpTraces(5, 10))
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("Kafka not acking: %d, want 503 with Retry-After", r.code)
	}
	_, err := grpcExport(t, c, mcpTraces(5, 10), testToken)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC with Kafka not acking: %v, want UNAVAILABLE", err)
	}
	close(release)
	td := mcpTraces(5, 10)
	waitFor(t, "Kafka acking again", func() bool { return postTraces(t, c, td).code == http.StatusOK })
}

// TestMissingTopicNotReady: with create_topics off and no topic, /readyz
// names the missing topic and senders get 503; once the topic exists the
// collector becomes ready.
func TestMissingTopicNotReady(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, func(cfg *Config) {
		f := false
		cfg.Kafka.CreateTopics = &f
	})
	waitFor(t, "readiness to name the missing topic", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "does not exist")
	})
	if r := postTraces(t, c, mcpTraces(2, 10)); r.code != http.StatusServiceUnavailable {
		t.Errorf("missing topic: %d, want 503", r.code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.CreateTopic(ctx, testTopic, 2); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c)
	if r := postTraces(t, c, mcpTraces(2, 10)); r.code != http.StatusOK {
		t.Errorf("after topic creation: %d", r.code)
	}
}
