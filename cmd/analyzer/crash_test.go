package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

// buildAnalyzer compiles this command once per test binary.
func buildAnalyzer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "analyzer")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func crashEvents(n int) []event.Event {
	base := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{EventID: fmt.Sprintf("c-%05d", i), Tenant: "acme", Kind: event.KindMessage,
			Time: base.Add(time.Duration(i) * 37 * time.Millisecond), Source: event.SourceSpan, Observer: event.ObserverServer,
			Method: "tools/call", AgentID: fmt.Sprintf("agent-%d", i%4), SessionID: fmt.Sprintf("s-%d", i%9), SessionKey: fmt.Sprintf("s-%d", i%9),
			ServerName: "files", ToolName: fmt.Sprintf("t%d", i%3), Outcome: event.OutcomeOK, Arguments: `{"n":1}`}
		if i%7 == 0 {
			evs[i].Outcome = event.OutcomeToolError
		}
	}
	return evs
}

func committed(t *testing.T, brokers []string, group string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.At > 0 {
			n += o.At
		}
	})
	return n
}

// TestKillBetweenInsertAndCommit runs the real binary, SIGKILLs it right
// after a batch's insert and before its commit, restarts it, and checks
// that what users see — distinct events, the per-minute rollup and the
// queries built on it — equals what was sent, although the batch was
// inserted twice.
func TestKillBetweenInsertAndCommit(t *testing.T) {
	bin := buildAnalyzer(t)
	k := testbed.Kfake(t)
	ch := testbed.ClickHouse(t)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "crash.ev", DeadLetterTopic: "crash.dlq"}
	{
		cl, err := kafka.NewClient(kc)
		if err != nil {
			t.Fatal(err)
		}
		if err := kafka.EnsureTopics(context.Background(), cl, kc, "crash.ev", "crash.dlq"); err != nil {
			t.Fatal(err)
		}
		evs := crashEvents(3000)
		recs := make([]*kgo.Record, len(evs))
		for i := range evs {
			v, err := event.Marshal(evs[i : i+1])
			if err != nil {
				t.Fatal(err)
			}
			recs[i] = &kgo.Record{Topic: "crash.ev", Key: []byte(evs[i].PartitionKey()), Value: v}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "analyzer.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
kafka:
  brokers: [%s]
  topic: crash.ev
  dead_letter_topic: crash.dlq
clickhouse:
  addr: [%s]
  database: %s
analyzer:
  batch_rows: 500
  batch_interval: 5s
  admin_addr: "-"
log:
  format: text
`, k.Brokers[0], ch.Addr, ch.Database)), 0o644)
	start := func(name string, env ...string) *testbed.Process {
		cmd := exec.Command(bin, "run", "-config", cfgPath)
		cmd.Env = append(os.Environ(), env...)
		p, err := testbed.StartProcess(cmd, filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(10 * time.Second) })
		return p
	}

	// First run: crash before the commit of the third batch.
	p1 := start("run1", crashEnv+"=3")
	select {
	case <-p1.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("analyzer did not crash\n%s", testbed.Tail(filepath.Join(dir, "run1.log"), 3000))
	}
	var ee *exec.ExitError
	if err := p1.Err(); err == nil || !asExit(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first run ended with %v, want SIGKILL\n%s", err, testbed.Tail(filepath.Join(dir, "run1.log"), 3000))
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Keep the duplicate rows visible, so the test can show the replay
	// happened (a background merge would collapse them).
	if err := st.Conn().Exec(ctx, "SYSTEM STOP MERGES "+ch.Database+".events"); err != nil {
		t.Fatal(err)
	}
	c1 := committed(t, k.Brokers, "mcpwatch-analyzer")
	d1, _ := st.CountDistinctEvents(ctx, "acme")
	if !(c1 >= 1000 && int64(d1) > c1) {
		t.Fatalf("after the crash: committed %d, stored %d — want stored beyond committed", c1, d1)
	}
	t.Logf("crash: committed %d offsets, %d events stored", c1, d1)

	// Second run: replays the uncommitted batch and finishes.
	p2 := start("run2")
	testbed.WaitUntil(t, "all offsets committed", 2*time.Minute, func() (bool, string) {
		c := committed(t, k.Brokers, "mcpwatch-analyzer")
		return c == 3000, fmt.Sprint(c)
	})
	p2.Stop(20 * time.Second)

	var raw uint64
	if err := st.Conn().QueryRow(ctx, "SELECT count() FROM "+ch.Database+".events").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw <= 3000 {
		t.Fatalf("raw rows %d: the crashed batch was not replayed, the test proves nothing", raw)
	}
	d, err := st.CountDistinctEvents(ctx, "acme")
	if err != nil || d != 3000 {
		t.Fatalf("distinct events %d %v, want 3000", d, err)
	}
	// The rollup and the queries agree with the events sent, computed here.
	wantByAgent := map[string]uint64{}
	wantOutcome := map[string]uint64{}
	for _, e := range crashEvents(3000) {
		wantByAgent[e.AgentID]++
		wantOutcome[string(e.Outcome)]++
	}
	q := store.CallsQuery{Tenant: "acme", From: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Step: time.Hour}
	for _, tc := range []struct {
		by   store.CallsGroupBy
		want map[string]uint64
	}{{store.GroupAgent, wantByAgent}, {store.GroupOutcome, wantOutcome}} {
		q.GroupBy = tc.by
		pts, err := st.CallsOverTime(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, p := range pts {
			got[p.Key] += p.Calls
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("calls by %s: got %v want %v", tc.by, got, tc.want)
		}
	}
	var rollupRows uint64
	st.Conn().QueryRow(ctx, "SELECT sum(c) FROM (SELECT uniqExactMerge(calls_state) AS c FROM "+ch.Database+".calls_per_minute GROUP BY minute, agent_id, server_name, tool_name, method, outcome)").Scan(&rollupRows)
	if rollupRows != 3000 {
		t.Fatalf("rollup total %d", rollupRows)
	}
	conv, err := st.Conversation(ctx, store.ConversationQuery{Tenant: "acme", SessionKey: "s-4", Limit: 10000})
	if err != nil || len(conv) != 333 { // i%9 == 4 for i < 3000
		t.Fatalf("session s-4: %d events %v", len(conv), err)
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
