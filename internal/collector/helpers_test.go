package collector

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/otlpin"
)

const (
	testToken  = "s3cr3t-token-acme"
	testTenant = "acme"
	testTopic  = "mcpwatch.events.v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The OTel SDK's global delegating logger/metric provider and
		// grpc's transport may leave idle goroutines that end on their own.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("MCPWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCollector runs a collector on free loopback ports against brokers.
// It does not wait for readiness; waitReady does.
func startCollector(t testing.TB, brokers []string, mod func(*Config)) *Collector {
	t.Helper()
	var cfg Config
	cfg.Receiver.GRPC.Endpoint = "127.0.0.1:0"
	cfg.Receiver.HTTP.Endpoint = "127.0.0.1:0"
	cfg.Admin.Endpoint = "127.0.0.1:0"
	cfg.Receiver.Auth.Tokens = []otlpin.TokenConfig{{Tenant: testTenant, Token: testToken}}
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Partitions = 4
	cfg.Kafka.DialTimeout = time.Second
	cfg.ReadinessInterval = 200 * time.Millisecond
	cfg.ProduceTimeout = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return c
}

// waitReady waits (not a timed assertion: a generous upper bound) until
// the collector's readiness says Kafka is reachable.
func waitReady(t testing.TB, c *Collector) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("collector never became ready: %v", c.Ready())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readTopic returns every record in topic, reading up to the end offsets
// as of the call.
func readTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("cannot list end offsets: %v", err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	got := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if got[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("cannot read topic %s to its end: %v (have %v, want %v)", topic, err, got, want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 > got[r.Partition] {
				got[r.Partition] = r.Offset + 1
			}
		})
	}
	return out
}

// decodeAll decodes every record; each must hold at least one event, and
// every event's partition key must be the record key (a record groups one
// agent's events of one request, kafka.ProducerConfig.RecordGroupBytes).
func decodeAll(t testing.TB, recs []*kgo.Record) []event.Event {
	t.Helper()
	var out []event.Event
	for _, r := range recs {
		evs, err := event.Unmarshal(r.Value)
		if err != nil {
			t.Fatalf("cannot decode record at offset %d: %v", r.Offset, err)
		}
		if len(evs) == 0 {
			t.Fatalf("record at offset %d holds no event", r.Offset)
		}
		for i := range evs {
			if k := evs[i].PartitionKey(); k != string(r.Key) {
				t.Errorf("record key %q, event %d partition key %q", r.Key, i, k)
			}
		}
		out = append(out, evs...)
	}
	return out
}

func authHeader() map[string]string { return map[string]string{"Authorization": "Bearer " + testToken} }

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
