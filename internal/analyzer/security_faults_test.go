package analyzer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// The security suite's fault classes (docs/security.md, "Faults"): each
// test drives a real ClickHouse 18.16 server (stopped, frozen, or with a
// table that no longer fits the rows) under a running analyzer.

// faultStore opens a store with short write and ping deadlines.
func faultStore(t *testing.T, ch *testbed.CH) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database, DialTimeout: 2 * time.Second,
		ReadTimeout: 30 * time.Second, InsertTimeout: 2 * time.Second, PingTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// produceRecords writes evs packed n events per record, as the collector
// packs one request's events of one agent.
func produceRecords(t testing.TB, cl *kgo.Client, topic string, evs []event.Event, n int) (bytes int) {
	t.Helper()
	var recs []*kgo.Record
	for i := 0; i < len(evs); i += n {
		v, err := event.Marshal(evs[i:min(i+n, len(evs))])
		if err != nil {
			t.Error(err)
			return 0
		}
		bytes += len(v)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(evs[i].PartitionKey()), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Errorf("produce: %v", err)
	}
	return bytes
}

// outage is how long TestSecurityBatchBoundsAfterOutage keeps ClickHouse
// down: MCPWATCH_FAULT_OUTAGE (a Go duration), default 5s so that the
// suite stays fast; the measurement used 60s (docs/analyzer.md).
func outage(t *testing.T) time.Duration {
	v := os.Getenv("MCPWATCH_FAULT_OUTAGE")
	if v == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("MCPWATCH_FAULT_OUTAGE=%q: want a positive duration", v)
	}
	return d
}

// heapLive is the live heap after a full collection.
func heapLive() uint64 {
	runtime.GC()
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// TestSecurityBatchBoundsAfterOutage: while ClickHouse is down a backlog
// of 10-event records builds up in a real Apache Kafka; after ClickHouse
// returns, every catch-up batch stays within batch_rows events and
// batch_bytes bytes (two analyzers, one bound by each), nothing is lost,
// and the live heap after catch-up is back near its steady state (no
// catch-up-sized buffer is kept). Kafka runs in its own process, so this
// process's heap is the analyzers' (and the test's).
func TestSecurityBatchBoundsAfterOutage(t *testing.T) {
	ch, srv := testbed.OwnClickHouse(t)
	k := testbed.ApacheKafka(t)
	ctx := context.Background()
	ch2, err := srv.CreateDatabase(ctx, ch.Database+"_b")
	if err != nil {
		t.Fatal(err)
	}
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "ev", DeadLetterTopic: "ev.dlq"}
	ensureTopics(t, kc)
	const perRecord = 10
	type run struct {
		name  string
		cfg   Config
		st    *store.Store
		a     *Analyzer
		bytes bool // the bytes bound is the one that binds
	}
	runs := []*run{
		{name: "events", cfg: Config{Group: "g-events", BatchRows: 5000, BatchBytes: 64 << 20}, st: faultStore(t, ch)},
		{name: "bytes", cfg: Config{Group: "g-bytes", BatchRows: 100000, BatchBytes: 1 << 20}, st: faultStore(t, ch2), bytes: true},
	}
	for _, r := range runs {
		r.cfg.BatchInterval = 100 * time.Millisecond
		r.cfg.RetryInitial, r.cfg.RetryMax, r.cfg.ProbeInterval = 50*time.Millisecond, 500*time.Millisecond, 200*time.Millisecond
		var stop func()
		r.a, stop = running(t, Options{Kafka: kc, Store: r.st, Config: r.cfg})
		defer stop()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	total := 0
	stored := func(what string) {
		testbed.WaitUntil(t, what, 3*time.Minute, func() (bool, string) {
			var got []string
			ok := true
			for _, r := range runs {
				n := distinct(t, r.st)
				ok = ok && n == uint64(total)
				got = append(got, fmt.Sprintf("%s %d/%d", r.name, n, total))
			}
			return ok, strings.Join(got, ", ")
		})
	}
	// Steady state: some traffic stored.
	evs := testEvents("steady", 20000)
	produceRecords(t, cl, "ev", evs, perRecord)
	total += len(evs)
	stored("steady traffic stored")
	steady := heapLive()

	// The outage: ClickHouse down, the collector keeps producing.
	down := outage(t)
	release := stopHoldingPorts(t, srv)
	end := time.Now().Add(down)
	var backlogBytes int
	for i := 0; time.Now().Before(end) && total < 200000; i++ {
		evs := testEvents(fmt.Sprintf("backlog%d", i), 2000)
		backlogBytes += produceRecords(t, cl, "ev", evs, perRecord)
		total += len(evs)
		time.Sleep(250 * time.Millisecond)
	}
	testbed.WaitUntil(t, "insert failures while down", time.Minute, func() (bool, string) {
		n := value(runs[0].a.m.insertErrors.WithLabelValues("events"))
		return n >= 1, fmt.Sprint(n)
	})
	duringOutage := heapLive()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := srv.Restart(rctx); err != nil {
		t.Fatalf("clickhouse did not come back: %v", err)
	}
	release()
	stored("backlog stored after the outage")
	after := heapLive()
	t.Logf("outage %s, backlog %d events (%d record bytes); live heap: steady %d MiB, during the outage %d MiB, after catch-up %d MiB",
		down, total-20000, backlogBytes, steady>>20, duringOutage>>20, after>>20)

	for _, r := range runs {
		pe, pb := value(r.a.m.peakEvents), value(r.a.m.peakBytes)
		t.Logf("%s: peak batch %v events, %v bytes", r.name, pe, pb)
		if pe > float64(r.cfg.BatchRows) || pb > float64(r.cfg.BatchBytes) {
			t.Errorf("%s: a batch held %v events / %v bytes, bounds %d / %d", r.name, pe, pb, r.cfg.BatchRows, r.cfg.BatchBytes)
		}
		// The binding bound was reached (the backlog filled batches).
		if (!r.bytes && pe < float64(r.cfg.BatchRows)/2) || (r.bytes && pb < float64(r.cfg.BatchBytes)/2) {
			t.Errorf("%s: catch-up batches stayed small (%v events, %v bytes): the bound was not exercised", r.name, pe, pb)
		}
	}
	// After catch-up the live heap is back near its steady state: the
	// slack covers a batch's reused buffers per analyzer and what the Kafka
	// clients buffer, not the backlog (tens of MiB of records).
	const slack = 32 << 20
	if after > steady+slack {
		t.Errorf("live heap after catch-up %d MiB, steady %d MiB (slack %d MiB): catch-up kept its buffers", after>>20, steady>>20, slack>>20)
	}
}

// adminGet fetches a path of an analyzer's admin listener.
func adminGet(t *testing.T, a *Analyzer, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecurityFrozenClickHouseIsNotReady: a ClickHouse server frozen
// with SIGSTOP (it accepts connections and answers nothing) makes the
// analyzer say so: mcpwatch_analyzer_storage_stalled 1, /readyz 503
// "storage stalled", clickhouse_up 0 and insert errors counted (the
// insert deadline, not read_timeout's 5 minutes); idle, the health ping
// times out first. After SIGCONT every event is stored and the analyzer
// is ready again.
func TestSecurityFrozenClickHouseIsNotReady(t *testing.T) {
	ch, srv := testbed.OwnClickHouse(t)
	k := testbed.Kfake(t)
	st := faultStore(t, ch)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "ev", DeadLetterTopic: "ev.dlq"}
	ensureTopics(t, kc)
	a, stop := running(t, Options{Kafka: kc, Store: st, Config: Config{BatchRows: 500, BatchInterval: 100 * time.Millisecond,
		RetryInitial: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, ProbeInterval: 200 * time.Millisecond, StallTimeout: time.Second}})
	defer stop()
	evs := testEvents("f", 400)
	produce(t, k.Brokers, "ev", evs[:200])
	testbed.WaitUntil(t, "first part stored and ready", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		c, body := adminGet(t, a, "/readyz")
		return n == 200 && c == 200, fmt.Sprint(n, c, body)
	})

	var thaw sync.Once
	cont := func() {
		thaw.Do(func() {
			if err := srv.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT: %v", err)
			}
		})
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cont)
	// Idle (nothing to write): the health ping times out.
	testbed.WaitUntil(t, "not ready while idle and frozen", 2*time.Minute, func() (bool, string) {
		c, body := adminGet(t, a, "/readyz")
		return c == 503 && value(a.m.chUp) == 0, fmt.Sprint(c, " ", body)
	})
	produce(t, k.Brokers, "ev", evs[200:])
	testbed.WaitUntil(t, "stalled, not ready, down, insert errors", 2*time.Minute, func() (bool, string) {
		c, body := adminGet(t, a, "/readyz")
		stalled, up := 0.0, value(a.m.chUp)
		if a.stalled() {
			stalled = 1
		}
		errs := value(a.m.insertErrors.WithLabelValues("events"))
		_, m := adminGet(t, a, "/metrics")
		return c == 503 && strings.Contains(body, "storage stalled") && stalled == 1 && up == 0 && errs >= 1 &&
				strings.Contains(m, "mcpwatch_analyzer_storage_stalled 1"),
			fmt.Sprintf("readyz %d %q, stalled %v, up %v, insert errors %v", c, body, stalled, up, errs)
	})

	cont()
	testbed.WaitUntil(t, "every event stored after SIGCONT, ready again", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		c, body := adminGet(t, a, "/readyz")
		return n == uint64(len(evs)) && c == 200 && !a.stalled() && value(a.m.chUp) == 1, fmt.Sprint(n, " ", c, " ", body)
	})
}

// TestSecurityRecoveryStartsAtTheProbe: with a backoff of 10 minutes
// after a failed insert, the batch is still stored as soon as ClickHouse
// is back, because the probe (a ping every probe_interval) ends the wait:
// no insert fails after the server is back, and at most the one probe
// that was under way when it came back fails.
func TestSecurityRecoveryStartsAtTheProbe(t *testing.T) {
	ch, srv := testbed.OwnClickHouse(t)
	k := testbed.Kfake(t)
	st := faultStore(t, ch)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "ev", DeadLetterTopic: "ev.dlq"}
	ensureTopics(t, kc)
	a, stop := running(t, Options{Kafka: kc, Store: st, Config: Config{BatchRows: 500, BatchInterval: 100 * time.Millisecond,
		RetryInitial: 10 * time.Minute, RetryMax: 10 * time.Minute, ProbeInterval: 200 * time.Millisecond}})
	defer stop()
	evs := testEvents("r", 300)
	produce(t, k.Brokers, "ev", evs[:100])
	testbed.WaitUntil(t, "first part stored", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == 100, fmt.Sprint(n)
	})

	release := stopHoldingPorts(t, srv)
	produce(t, k.Brokers, "ev", evs[100:])
	testbed.WaitUntil(t, "an insert failed and waits for its retry, probing", 2*time.Minute, func() (bool, string) {
		e, p := value(a.m.insertErrors.WithLabelValues("events")), value(a.m.probes.WithLabelValues("failed"))
		return e >= 1 && p >= 2, fmt.Sprintf("insert errors %v, failed probes %v", e, p)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("clickhouse did not come back: %v", err)
	}
	release()
	insertErrs, failedProbes := value(a.m.insertErrors.WithLabelValues("events")), value(a.m.probes.WithLabelValues("failed"))
	// Well within the 10-minute backoff: only the probe can end the wait.
	testbed.WaitUntil(t, "all events stored after the restart", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == uint64(len(evs)), fmt.Sprint(n)
	})
	if ok := value(a.m.probes.WithLabelValues("ok")); ok < 1 {
		t.Errorf("successful probes %v: the wait did not end at a probe", ok)
	}
	if n := value(a.m.probes.WithLabelValues("failed")) - failedProbes; n > 1 {
		t.Errorf("%v probes failed after the server was back, want at most the one under way", n)
	}
	if n := value(a.m.insertErrors.WithLabelValues("events")) - insertErrs; n != 0 {
		t.Errorf("%v inserts failed after the server was back: recovery did not wait for the probe", n)
	}
}

// TestSecurityPermanentInsertErrorIsNotRetried: when the events table no
// longer fits the rows (a dropped column: a schema mismatch), the insert
// is tried once, not retried (the backoff here is 10 minutes), and the
// batch goes to the dead-letter topic whole with an "insert: " reason; its
// offsets are committed, so the partition moves on and nothing is lost.
func TestSecurityPermanentInsertErrorIsNotRetried(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := faultStore(t, ch)
	ctx := context.Background()
	if err := st.Conn().Exec(ctx, "ALTER TABLE "+ch.Database+".events DROP COLUMN user_agent"); err != nil {
		t.Fatal(err)
	}
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 1, Topic: "ev", DeadLetterTopic: "ev.dlq"}
	ensureTopics(t, kc)
	a, stop := running(t, Options{Kafka: kc, Store: st, Config: Config{BatchRows: 1000, BatchInterval: 100 * time.Millisecond,
		RetryInitial: 10 * time.Minute, RetryMax: 10 * time.Minute}})
	defer stop()
	evs := testEvents("p", 50)
	produce(t, k.Brokers, "ev", evs)
	testbed.WaitUntil(t, "the batch dead-lettered", 2*time.Minute, func() (bool, string) {
		n := value(a.m.deadLettered.WithLabelValues("insert"))
		return n == float64(len(evs)), fmt.Sprint(n)
	})
	if n := value(a.m.insertErrors.WithLabelValues("events")); n != 1 {
		t.Errorf("events insert attempts that failed: %v, want 1 (not retried)", n)
	}
	if n := value(a.m.permanent.WithLabelValues("events")); n != 1 {
		t.Errorf("permanent write errors: %v, want 1", n)
	}
	dl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("ev.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	got := 0
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for got < len(evs) && pctx.Err() == nil {
		fs := dl.PollRecords(pctx, 100)
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == HeaderDLQReason && !strings.HasPrefix(string(h.Value), "insert: ") {
					t.Errorf("dead letter reason %q", h.Value)
				}
			}
			got++
		})
	}
	if got != len(evs) {
		t.Fatalf("dead letters %d, want %d", got, len(evs))
	}
	// Committed: the group has nothing left to consume.
	testbed.WaitUntil(t, "offsets committed", time.Minute, func() (bool, string) {
		adm := kafkaLag(t, k.Brokers, DefaultGroup, "ev")
		return adm == 0, fmt.Sprint(adm)
	})
}

// kafkaLag is group's lag on topic summed over partitions (-1: unknown).
func kafkaLag(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lags, err := kadm.NewClient(cl).Lag(ctx, group)
	if err != nil {
		return -1
	}
	var sum int64
	for _, l := range lags[group].Lag[topic] {
		if l.Err != nil || l.Commit.At < 0 {
			return -1
		}
		sum += l.Lag
	}
	return sum
}
