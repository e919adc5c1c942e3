package realsenders

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/analyzer"
	"github.com/mcpwatch/mcpwatch/internal/collector"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/enrich"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/otlpin"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) {
	code := testbed.Main(m)
	if tsBuildDir != "" {
		os.RemoveAll(tsBuildDir) // the compiled TypeScript runner (runners_test.go)
	}
	os.Exit(code)
}

// pipeline is one mcpwatch deployment shared by every stack's test: kfake,
// a ClickHouse database, the collector (in-process, OTLP/HTTP on a free
// port, one bearer token per tenant) and the analyzer (in-process, all
// three roles, wired as cmd/analyzer wires them: the embedded rule pack
// with ClickHouse baselines, enrichment with ClickHouse state, an incident
// manager). Each stack sends as its own tenant, so its events and findings
// are its own.
type pipeline struct {
	kafka    *testbed.Kafka
	ch       *testbed.CH
	st       *store.Store
	col      *collector.Collector
	kcfg     kafka.Config
	groups   []string // the analyzer's consumer groups
	tokens   map[string]string
	endpoint string // OTLP/HTTP base URL
}

func logger() *slog.Logger {
	if os.Getenv("MCPWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startPipeline starts everything; tenants are the tenants to issue tokens
// for (token "realsenders-<tenant>-token").
func startPipeline(t *testing.T, tenants []string) *pipeline {
	t.Helper()
	ctx := context.Background()
	p := &pipeline{kafka: testbed.Kfake(t), ch: testbed.ClickHouse(t), tokens: map[string]string{}}
	st, err := store.Open(ctx, store.Config{Addr: []string{p.ch.Addr}, Database: p.ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p.st = st
	p.kcfg = kafka.Config{Brokers: p.kafka.Brokers, Partitions: 3}.WithDefaults()

	var cfg collector.Config
	cfg.Receiver.GRPC.Endpoint = "127.0.0.1:0"
	cfg.Receiver.HTTP.Endpoint = "127.0.0.1:0"
	cfg.Admin.Endpoint = "127.0.0.1:0"
	for _, tenant := range tenants {
		tok := "realsenders-" + tenant + "-token"
		p.tokens[tenant] = tok
		cfg.Receiver.Auth.Tokens = append(cfg.Receiver.Auth.Tokens, otlpin.TokenConfig{Tenant: tenant, Token: tok})
	}
	cfg.Kafka = p.kcfg
	cfg.ReadinessInterval = 200 * time.Millisecond
	col, err := collector.New(cfg, logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		col.Shutdown(ctx)
	})
	testbed.WaitUntil(t, "collector ready", time.Minute, func() (bool, string) {
		err := col.Ready()
		return err == nil, fmt.Sprint(err)
	})
	p.col = col
	p.endpoint = "http://" + col.HTTPAddr()

	p.startAnalyzer(t)
	return p
}

// startAnalyzer wires the analyzer as cmd/analyzer's run does with the
// default configuration and no response section.
func (p *pipeline) startAnalyzer(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	log := logger()
	reg := prometheus.NewRegistry()
	acfg := analyzer.Config{AdminAddr: "-", BatchInterval: 200 * time.Millisecond, SessionTimeout: 10 * time.Second}
	o := analyzer.Options{Kafka: p.kcfg, Config: acfg, Store: p.st, Logger: log, Registry: reg}
	engine, err := detect.Open(ctx, detect.Config{Workers: 1}, p.st.Conn(), p.st.Database(),
		prometheus.WrapRegistererWith(prometheus.Labels{"role": analyzer.RoleIngest}, reg), log)
	if err != nil {
		t.Fatal(err)
	}
	engine.SetRepartition(true)
	o.Detector = engine
	groups, err := detect.New(engine.Pack(), detect.Options{Workers: 1, Logger: log,
		Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"role": analyzer.RoleDetect}, reg)})
	if err != nil {
		t.Fatal(err)
	}
	o.DetectState = groups
	enr, err := enrich.New(enrich.Config{}, enrich.Options{Conn: p.st.Conn(), Database: p.st.Database(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	o.Enricher = enr
	mgr, _, err := analyzer.NewIncidentManager(ctx, analyzer.ResponderOptions{Conn: p.st.Conn(), Database: p.st.Database(),
		Logger: log, Registerer: reg, Pack: engine.Pack}, 0)
	if err != nil {
		t.Fatal(err)
	}
	o.Sink = mgr
	a, err := analyzer.New(o)
	if err != nil {
		t.Fatal(err)
	}
	c := acfg.WithDefaults()
	p.groups = []string{c.Group, c.DetectGroup, c.RespondGroup, c.CallJoinGroup}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("analyzer: %v", err)
		}
	})
	testbed.WaitUntil(t, "analyzer ready", 2*time.Minute, func() (bool, string) {
		err := a.Ready(ctx)
		return err == nil, fmt.Sprint(err)
	})
}

// topicEvents reads the whole events topic and returns the events of
// tenant on it (what the collector produced for that tenant).
func (p *pipeline) topicEvents(t *testing.T, tenant string) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kcfg.Brokers...), kgo.ConsumeTopics(p.kcfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, p.kcfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []event.Event
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (left %v)", p.kcfg.Topic, err, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			evs, err := event.Unmarshal(r.Value)
			if err != nil {
				t.Errorf("record %d/%d: %v", r.Partition, r.Offset, err)
			}
			for _, e := range evs {
				if e.Tenant == tenant {
					out = append(out, e)
				}
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// drained waits until every consumer group of the analyzer has committed
// up to the end of its topic, twice in a row: the events are stored, the
// detect role's findings produced and the respond role's findings stored.
// The detect role writes the findings topic in transactions, whose commit
// marker takes an offset no consumer ever commits past on its own: a
// respond partition one offset short of its end is drained when that offset
// holds no record.
func (p *pipeline) drained(t *testing.T) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kcfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	markers := map[string]bool{} // "partition/offset" known to hold no record
	streak := 0
	testbed.WaitUntil(t, "analyzer drained", 2*time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lags, err := adm.Lag(ctx, p.groups...)
		if err != nil {
			streak = 0
			return false, err.Error()
		}
		desc := ""
		for _, g := range p.groups {
			gl, ok := lags[g]
			if !ok || gl.Error() != nil {
				desc += fmt.Sprintf(" group %s: %v", g, gl.Error())
				continue
			}
			for topic, parts := range gl.Lag {
				for part, l := range parts {
					lag := l.Lag
					if l.Commit.At < 0 {
						lag = l.End.Offset
					}
					if lag == 1 && topic == p.kcfg.FindingsTopic {
						key := fmt.Sprintf("%d/%d", part, l.Commit.At)
						if !markers[key] && p.noRecordAt(t, topic, part, l.Commit.At) {
							markers[key] = true
						}
						if markers[key] {
							lag = 0
						}
					}
					if lag > 0 {
						desc += fmt.Sprintf(" %s/%s/%d=%d", g, topic, part, lag)
					}
				}
			}
		}
		if desc != "" {
			streak = 0
			return false, desc
		}
		streak++
		return streak >= 2, "drained once"
	})
}

// noRecordAt reports whether offset of topic/partition holds no record
// (a transaction marker): a read from there returns nothing.
func (p *pipeline) noRecordAt(t *testing.T, topic string, partition int32, offset int64) bool {
	t.Helper()
	if offset < 0 {
		return false
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kcfg.Brokers...), kgo.FetchMaxWait(300*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	found := false
	for ctx.Err() == nil && !found {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { found = found || r.Offset >= offset })
	}
	return !found
}

func (p *pipeline) conn() driver.Conn { return p.st.Conn() }
