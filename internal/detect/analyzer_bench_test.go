package detect_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/analyzer"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// BenchmarkAnalyzerDetectionsOnOff measures, in the same run, the
// analyzer's Kafka (kfake) → decode → detect → ClickHouse throughput on the
// scenario corpus with the full rule pack as its Detector and without one,
// each iteration with a fresh database and consumer group. Reported: both
// events/s, the ratio (target ≥ 80%), and findings per run.
//
//	go test -run '^$' -bench AnalyzerDetectionsOnOff -benchtime 2x ./internal/detect/
func BenchmarkAnalyzerDetectionsOnOff(b *testing.B) {
	corpus := scenario.Eval(1, 30000).Plain()
	n := len(corpus)
	k := testbed.Kfake(b)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: "bench-detect", DeadLetterTopic: "bench-detect.dlq"}
	{
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cl, err := kafka.NewClient(kc, kgo.DefaultProduceTopic(kc.Topic), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		if err := kafka.EnsureTopics(ctx, cl, kc.WithDefaults(), kc.Topic, kc.DeadLetterTopic); err != nil {
			b.Fatal(err)
		}
		var recs []*kgo.Record
		for i := range corpus {
			v, err := event.Marshal(corpus[i : i+1])
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Key: []byte(corpus[i].PartitionKey()), Value: v})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		cl.Close()
		cancel()
	}
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(it int, withDetect bool) (time.Duration, uint64) {
		b.StopTimer()
		ch := testbed.ClickHouse(b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		var eng *detect.Engine
		opts := analyzer.Options{Kafka: kc, Store: st, Logger: log}
		if withDetect {
			eng, err = detect.New(pack, detect.Options{Baselines: detect.NewClickHouseBaselines(st.Conn(), ch.Database)})
			if err != nil {
				b.Fatal(err)
			}
			opts.Detector = eng
		}
		assigned := make(chan time.Time, 1)
		opts.OnAssigned = func(role string, _ int) {
			if role != analyzer.RoleIngest {
				return
			}
			select {
			case assigned <- time.Now():
			default:
			}
		}
		opts.Config = analyzer.Config{Group: fmt.Sprintf("bench-detect-%d-%d-%v", time.Now().UnixNano(), it, withDetect), AdminAddr: "-",
			Retention: analyzer.RetentionConfig{Disabled: true}}
		a, err := analyzer.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- a.Run(ctx) }()
		var start time.Time
		select {
		case start = <-assigned:
		case <-time.After(time.Minute):
			b.Fatal("no partitions assigned")
		}
		for a.Inserted() < uint64(n) {
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(start)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		var findings uint64
		if eng != nil {
			findings = eng.Stats().Findings
		}
		return d, findings
	}
	var off, on time.Duration
	var findings uint64
	for it := 0; it < b.N; it++ {
		d, _ := run(it, false)
		off += d
		d, f := run(it, true)
		on += d
		findings = f
	}
	offRate := float64(n*b.N) / off.Seconds()
	onRate := float64(n*b.N) / on.Seconds()
	b.ReportMetric(offRate, "off_events/s")
	b.ReportMetric(onRate, "on_events/s")
	b.ReportMetric(100*onRate/offRate, "%_with_detections")
	b.ReportMetric(float64(findings), "findings/run")
	b.ReportMetric(float64(n), "events/run")
}
