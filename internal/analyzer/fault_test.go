package analyzer

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// restartClickHouse starts clickhouse-server again from the config the
// testbed wrote (same ports, same data) and waits until it answers.
func restartClickHouse(t *testing.T, srv *testbed.CHServer, st *store.Store) {
	t.Helper()
	cmd := exec.Command(testbed.ClickHouseBinary, "--config-file="+filepath.Join(srv.Dir(), "config.xml"))
	cmd.Dir = srv.Dir()
	p, err := testbed.StartProcess(cmd, filepath.Join(srv.Dir(), "log", "restart.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(15 * time.Second) })
	if err := p.WaitFor(60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return st.Ping(ctx)
	}); err != nil {
		t.Fatalf("clickhouse did not come back: %v", err)
	}
}

func TestClickHouseDownLosesNothing(t *testing.T) {
	ch, srv := testbed.OwnClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 2, Topic: "ev", DeadLetterTopic: "ev.dlq"}
	ensureTopics(t, kc)
	evs := testEvents("d", 600)
	a, stop := running(t, Options{Kafka: kc, Store: st,
		Config: Config{BatchRows: 100, BatchInterval: 100 * time.Millisecond, RetryInitial: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond}})
	produce(t, k.Brokers, "ev", evs[:200])
	waitUntil(t, "first part stored", time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == 200, fmt.Sprint(n)
	})

	srv.Stop() // ClickHouse goes away mid-stream
	produce(t, k.Brokers, "ev", evs[200:])
	waitUntil(t, "insert failures while down", time.Minute, func() (bool, string) {
		n := value(a.m.insertErrors.WithLabelValues("events"))
		return n >= 2, fmt.Sprint(n)
	})
	if err := a.Ready(context.Background()); err == nil {
		t.Fatal("ready while clickhouse is down")
	}
	restartClickHouse(t, srv, st)
	waitUntil(t, "caught up", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == uint64(len(evs)), fmt.Sprint(n)
	})
	stop()
	total, err := st.CallsTotal(context.Background(), store.CallsQuery{Tenant: "acme", From: base, To: base.Add(time.Hour)})
	if err != nil || total != 594 { // 600 minus 6 tool definitions
		t.Fatalf("calls %d %v", total, err)
	}
}

func TestRetention(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	now := time.Now().UTC()
	old := testEvents("old", 3)
	for i := range old {
		old[i].Time = now.AddDate(0, 0, -40)
	}
	fresh := testEvents("new", 3)
	for i := range fresh {
		fresh[i].Time = now
	}
	ctx := context.Background()
	if err := st.InsertEvents(ctx, append(old, fresh...)); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertFindings(ctx, []event.Finding{
		{FindingID: "old", Tenant: "acme", Time: now.AddDate(0, 0, -400), RuleID: "r", Severity: event.SeverityLow},
		{FindingID: "new", Tenant: "acme", Time: now.AddDate(0, 0, -300), RuleID: "r", Severity: event.SeverityLow},
	}); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Kafka: kafka.Config{Brokers: k.Brokers}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	a.ApplyRetention(ctx, now) // defaults: events 30 days, findings 365
	if n := distinct(t, st); n != 3 {
		t.Fatalf("events left %d", n)
	}
	var ids []string
	rows, err := st.Conn().Query(ctx, "SELECT finding_id FROM "+ch.Database+".findings ORDER BY finding_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if strings.Join(ids, ",") != "new" {
		t.Fatalf("findings left %v", ids)
	}
	if got := value(a.m.retention.WithLabelValues("events")); got != 1 {
		t.Fatalf("retention metric %v", got)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
