package analyzer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) {
	os.Exit(testbed.Main(m))
}

var base = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// testEvents returns n tool-call events spread over agents, servers and
// minutes, with redacted arguments, plus one tool definition per 100.
func testEvents(prefix string, n int) []event.Event {
	evs := make([]event.Event, 0, n)
	for i := 0; i < n; i++ {
		e := event.Event{
			EventID: fmt.Sprintf("%s-%06d", prefix, i), Tenant: "acme", Kind: event.KindMessage,
			Time:   base.Add(time.Duration(i) * 100 * time.Millisecond),
			Source: event.SourceSpan, Observer: event.ObserverServer, DurationNs: uint64(1000 + i),
			TraceID: fmt.Sprintf("%032x", i/10), SpanID: fmt.Sprintf("%016x", i), ServiceName: "fs-server",
			Method: "tools/call", SessionID: fmt.Sprintf("sess-%d", i%7), SessionKey: fmt.Sprintf("sess-%d", i%7),
			AgentID: fmt.Sprintf("agent-%d", i%5), UserID: "alice", ClientName: "claude-code",
			ServerName: fmt.Sprintf("srv-%d", i%3), ToolName: fmt.Sprintf("tool-%d", i%4),
			Arguments: `{"token":"[REDACTED:github_token]","path":"/tmp/x"}`, ArgumentsSize: 120,
			Result: `{"ok":true}`, ResultSize: 11, Outcome: event.OutcomeOK, Tags: []string{"secret:github_token"},
		}
		if i%10 == 9 {
			e.Outcome, e.ErrorType = event.OutcomeError, "timeout"
		}
		if i%100 == 50 {
			e.Kind, e.Method, e.Arguments, e.Result, e.ArgumentsSize, e.ResultSize, e.Tags = event.KindToolDefinition, "tools/list", "", "", 0, 0, nil
			e.ToolDescription, e.ToolInputSchema, e.ToolAnnotations = "Reads files", `{"type":"object"}`, `{}`
			e.ToolDefinitionHash = event.ToolDefinitionHash(e.ToolName, e.ToolDescription, e.ToolInputSchema, e.ToolAnnotations)
		}
		evs = append(evs, e)
	}
	return evs
}

// produce writes each event as one record (as the collector does) and
// extra raw values as-is.
func produce(t testing.TB, brokers []string, topic string, evs []event.Event, raw ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(evs)+len(raw))
	for i := range evs {
		v, err := event.Marshal(evs[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(evs[i].PartitionKey()), Value: v})
	}
	for _, v := range raw {
		recs = append(recs, &kgo.Record{Key: []byte("bad"), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func ensureTopics(t testing.TB, kc kafka.Config) {
	t.Helper()
	cl, err := kafka.NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kc = kc.WithDefaults()
	if err := kafka.EnsureTopics(ctx, cl, kc, kc.Topic, kc.DeadLetterTopic); err != nil {
		t.Fatal(err)
	}
}

func openStore(t testing.TB, addr, db string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, store.Config{Addr: []string{addr}, Database: db, DialTimeout: 2 * time.Second, ReadTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// running starts an analyzer and returns a stop func that waits for Run.
func running(t testing.TB, o Options) (*Analyzer, func()) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	if o.Config.AdminAddr == "" {
		o.Config.AdminAddr = "127.0.0.1:0"
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("analyzer did not stop")
		}
	}
	t.Cleanup(stop)
	return a, stop
}

func distinct(t testing.TB, s *store.Store) uint64 {
	t.Helper()
	n, err := s.CountDistinctEvents(context.Background(), "acme")
	if err != nil {
		t.Logf("count: %v", err)
	}
	return n
}
