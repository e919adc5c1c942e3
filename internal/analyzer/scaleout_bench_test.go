package analyzer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// The scale-out benchmarks run the whole analyzer (ingest, detect and
// respond roles) on a real Apache Kafka broker — a separate process, so the
// broker's CPU is not counted as the analyzer's — and ClickHouse 18.16, over
// the labelled scenario corpus (MCPWATCH_BENCH_EVENTS events, default 30k;
// every stateful rule kind). Each run uses fresh topics, groups and
// database; the analyzers start first, and once every partition of every
// role's topic is assigned (group joins are not what is measured) the
// corpus is produced to the events topic; a run ends when every event is
// stored, every detection input applied and every finding stored. CPU is
// this process's user+system time over that span: the analyzers and the
// corpus's producer (the same in every variant); ClickHouse and Kafka are
// other processes.
//
//	go test -run '^$' -bench 'RepartitionCost|ScaleOut' -benchtime 5x -count 1 ./internal/analyzer/
//	MCPWATCH_BENCH_PROFILE_DIR=/tmp/prof: a CPU profile of each measured span
//	MCPWATCH_BENCH_EVENTS=150000 go test -run '^$' -bench ScaleOut -benchtime 3x ./internal/analyzer/

// BenchmarkRepartitionCost compares, in the same run, one instance that
// applies every rule in the ingest role (no repartition: what one analyzer
// did before the detect role) with one instance whose ingest role hands the
// rules grouped wider than an agent to its detect role through
// mcpwatch.detect.v1. Reported: CPU per event of both and the extra
// (target ≤ 15%).
func BenchmarkRepartitionCost(b *testing.B) {
	bed := newScaleBed(b)
	var single, split []scaleRun
	// MCPWATCH_BENCH_VARIANT=single|split runs one variant only (for
	// instruction counts under callgrind: the other's figures are 0).
	variant := os.Getenv("MCPWATCH_BENCH_VARIANT")
	for i := 0; i < b.N; i++ {
		if variant != "split" {
			single = append(single, bed.run(b, 1, false))
		}
		if variant != "single" {
			split = append(split, bed.run(b, 1, true))
		}
	}
	if variant != "" {
		runs := append(single, split...)
		b.ReportMetric(median(runs, cpuPerEvent), variant+"_cpu-ns/event")
		b.ReportMetric(float64(runs[0].inputs), "inputs/run")
		b.ReportMetric(float64(runs[0].findings), "findings/run")
		return
	}
	s, p := median(single, cpuPerEvent), median(split, cpuPerEvent)
	b.ReportMetric(s, "single_cpu-ns/event")
	b.ReportMetric(p, "split_cpu-ns/event")
	b.ReportMetric(100*(p-s)/s, "%_extra_cpu")
	b.ReportMetric(median(single, eventsPerSec), "single_events/s")
	b.ReportMetric(median(split, eventsPerSec), "split_events/s")
	b.ReportMetric(float64(split[0].inputs), "inputs/run")
	b.ReportMetric(float64(split[0].findings), "findings/run")
}

// BenchmarkScaleOut runs 1, 2 and 3 analyzer instances (in this process,
// sharing its cores) in one consumer group per role. On a 2-core machine
// shared with ClickHouse and Kafka this shows the coordination cost per
// event, not the throughput of more machines.
func BenchmarkScaleOut(b *testing.B) {
	bed := newScaleBed(b)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			var runs []scaleRun
			for i := 0; i < b.N; i++ {
				runs = append(runs, bed.run(b, n, true))
			}
			b.ReportMetric(median(runs, eventsPerSec), "events/s")
			b.ReportMetric(median(runs, cpuPerEvent), "cpu-ns/event")
			b.ReportMetric(float64(runs[0].findings), "findings/run")
		})
	}
}

type scaleBed struct {
	kafka    *testbed.Kafka
	corpus   []event.Event
	recs     []*kgo.Record
	pack     *detect.Pack
	findings int // distinct findings of the corpus
	seq      int
}

func newScaleBed(b *testing.B) *scaleBed {
	b.Helper()
	n := 30000
	if v, err := strconv.Atoi(os.Getenv("MCPWATCH_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	corpus := scenario.Eval(1, n).Plain()
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	bed := &scaleBed{kafka: testbed.ApacheKafka(b), corpus: corpus, pack: pack}
	// Done means every finding stored: as many as one engine finds (the
	// split gives the same set, TestRepartitionedEqualsOneEngine).
	one, err := detect.New(pack, detect.Options{})
	if err != nil {
		b.Fatal(err)
	}
	fs, err := one.Detect(context.Background(), corpus)
	if err != nil || len(fs) == 0 {
		b.Fatalf("reference detection: %d findings, %v", len(fs), err)
	}
	ids := map[string]bool{}
	for _, f := range fs {
		ids[f.FindingID] = true
	}
	bed.findings = len(ids)
	for i := range corpus {
		v, err := event.Marshal(corpus[i : i+1])
		if err != nil {
			b.Fatal(err)
		}
		bed.recs = append(bed.recs, &kgo.Record{Key: []byte(corpus[i].PartitionKey()), Value: v})
	}
	return bed
}

type scaleRun struct {
	wall, cpu        time.Duration
	events           int
	inputs, findings uint64
}

func cpuPerEvent(r scaleRun) float64  { return float64(r.cpu.Nanoseconds()) / float64(r.events) }
func eventsPerSec(r scaleRun) float64 { return float64(r.events) / r.wall.Seconds() }

func median(rs []scaleRun, f func(scaleRun) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run starts n analyzers on fresh topics and a fresh database, and returns
// the cost of consuming the corpus.
func (bed *scaleBed) run(b *testing.B, n int, split bool) scaleRun {
	b.Helper()
	b.StopTimer()
	bed.seq++
	id := fmt.Sprintf("%d-%d", time.Now().UnixNano(), bed.seq)
	kc := kafka.Config{Brokers: bed.kafka.Brokers, Partitions: 6, Topic: "ev-" + id, FindingsTopic: "fi-" + id,
		DetectTopic: "de-" + id, DetectStateTopic: "ds-" + id, DeadLetterTopic: "dl-" + id}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := kafka.NewClient(kc, kgo.DefaultProduceTopic(kc.Topic), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, kc.WithDefaults(), kc.Topic); err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, len(bed.recs))
	for i, r := range bed.recs {
		c := *r
		recs[i] = &c
	}
	ch := testbed.ClickHouse(b)
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var logw io.Writer = io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var as []*analyzer.Analyzer
	for i := 0; i < n; i++ {
		ing, err := detect.New(bed.pack, detect.Options{Repartition: split})
		if err != nil {
			b.Fatal(err)
		}
		o := analyzer.Options{Kafka: kc, Store: st, Logger: log, Detector: ing,
			Config: analyzer.Config{Group: "g-" + id, AdminAddr: "-", Retention: analyzer.RetentionConfig{Disabled: true},
				Roles: []string{analyzer.RoleIngest, analyzer.RoleRespond}}}
		if split {
			o.DetectState, _ = detect.New(bed.pack, detect.Options{Workers: 1})
			o.Config.Roles = analyzer.AllRoles
		}
		mgr, _, err := analyzer.NewIncidentManager(ctx, analyzer.ResponderOptions{Conn: st.Conn(), Database: st.Database()}, 0)
		if err != nil {
			b.Fatal(err)
		}
		o.Sink = mgr
		a, err := analyzer.New(o)
		if err != nil {
			b.Fatal(err)
		}
		as = append(as, a)
	}
	done := make(chan error, n)
	for _, a := range as {
		go func() { done <- a.Run(ctx) }()
	}
	sum := func(name string) uint64 {
		var t uint64
		for _, a := range as {
			t += counter(a.Registry(), name)
		}
		return t
	}
	// Warm: every partition of every role's topic owned, for a moment.
	roles := 2
	if split {
		roles = 3
	}
	want := uint64(roles * int(kc.Partitions))
	for steady, deadline := 0, time.Now().Add(2*time.Minute); steady < 10; {
		if sum("mcpwatch_analyzer_assigned_partitions") == want {
			steady++
		} else {
			steady = 0
		}
		if time.Now().After(deadline) {
			b.Fatalf("partitions assigned: %d of %d", sum("mcpwatch_analyzer_assigned_partitions"), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dir := os.Getenv("MCPWATCH_BENCH_PROFILE_DIR"); dir != "" {
		// A CPU profile of the measured span only, per variant and run.
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("n%d-split%v-%d.pprof", n, split, bed.seq)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	start := time.Now()
	b.StartTimer()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var ins uint64
		for _, a := range as {
			ins += a.Inserted()
		}
		if ins >= uint64(len(bed.corpus)) && stored(ctx, b, st) >= uint64(bed.findings) {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("an analyzer stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("not done: %d events stored", ins)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := scaleRun{wall: time.Since(start), cpu: cpuTime() - cpu0, events: len(bed.corpus),
		inputs: sum("mcpwatch_analyzer_detect_inputs_produced_total"), findings: sum("mcpwatch_analyzer_findings_produced_total")}
	b.StopTimer()
	pprof.StopCPUProfile()
	if testing.Verbose() {
		b.Logf("instances=%d split=%v: %d inputs produced, %d applied, %d findings produced, %d consumed, rows %d",
			n, split, r.inputs, sum("mcpwatch_analyzer_detect_inputs_applied_total"), r.findings,
			sum("mcpwatch_analyzer_findings_consumed_total"), sum("mcpwatch_analyzer_rows_inserted_total"))
	}
	cancel()
	for range as {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// stored counts the distinct findings in ClickHouse.
func stored(ctx context.Context, b *testing.B, st *store.Store) uint64 {
	var n uint64
	if err := st.Conn().QueryRow(ctx, "SELECT uniqExact(finding_id) FROM "+st.Database()+".findings").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// counter reads a counter's or gauge's value (summed over its labels)
// from reg.
func counter(reg *prometheus.Registry, name string) uint64 {
	mfs, _ := reg.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return uint64(v)
}
