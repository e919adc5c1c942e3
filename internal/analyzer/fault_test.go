package analyzer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// stopHoldingPorts stops srv and keeps its native and HTTP ports bound
// until release is called, so that nothing else on the machine can take
// them while ClickHouse is down.
//
// Why: the server closes its listeners at the start of a graceful
// shutdown, which then lasts seconds (it waits for open connections), and
// it stays down until the test restarts it. Any process that binds port 0
// meanwhile (other tests start servers on free ports all the time) can be
// given the freed port; clickhouse-server then cannot listen on restart
// and exits (status 70), and the store may even reach the foreign
// listener. That made this test flaky on a busy machine.
//
// The hold is a socket bound with SO_REUSEADDR but not listening: a dial
// to it is refused exactly as to a stopped server; port-0 binds (how every
// test here picks its "free" ports) and outgoing connections skip a bound
// port; and clickhouse-server, which binds with SO_REUSEADDR, can still
// bind and listen on it, so the ports stay held until the restarted server
// owns them. (An explicit SO_REUSEADDR bind of that very port number could
// still share it, but nothing learns the number while it is held.) The hold is taken by retrying the
// bind every millisecond while the server shuts down, so the window in
// which the port is free shrinks from the whole outage to about 1 ms.
func stopHoldingPorts(t *testing.T, srv *testbed.CHServer) (release func()) {
	t.Helper()
	stopped := make(chan struct{})
	go func() { defer close(stopped); srv.Stop() }()
	var fds []int
	release = func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		fds = nil
	}
	t.Cleanup(release)
	for _, addr := range []string{srv.Addr, srv.HTTPAddr} {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			fd, err := bindNoListen(addr)
			if err == nil {
				fds = append(fds, fd)
				break
			}
			select {
			case <-stopped:
				// The server is gone: one more try, then it is someone else's.
				if fd, err = bindNoListen(addr); err == nil {
					fds = append(fds, fd)
				} else {
					t.Fatalf("cannot hold clickhouse port %s after the server stopped (another process took it?): %v", addr, err)
				}
			default:
				if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
					t.Fatalf("cannot hold clickhouse port %s while the server stops: %v", addr, err)
				}
				time.Sleep(time.Millisecond)
				continue
			}
			break
		}
	}
	<-stopped
	return release
}

// bindNoListen binds a TCP socket to addr (IPv4) with SO_REUSEADDR and
// does not listen on it.
func bindNoListen(addr string) (int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return -1, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return -1, err
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return -1, fmt.Errorf("not an IPv4 address: %s", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
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
	testbed.WaitUntil(t, "first part stored", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == 200, fmt.Sprint(n)
	})

	release := stopHoldingPorts(t, srv) // ClickHouse goes away mid-stream
	produce(t, k.Brokers, "ev", evs[200:])
	testbed.WaitUntil(t, "insert failures while down", 2*time.Minute, func() (bool, string) {
		n := value(a.m.insertErrors.WithLabelValues("events"))
		return n >= 2, fmt.Sprint(n)
	})
	if err := a.Ready(context.Background()); err == nil {
		t.Fatal("ready while clickhouse is down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("clickhouse did not come back: %v", err)
	}
	release() // the restarted server listens on its ports now
	testbed.WaitUntil(t, "all events stored after the restart", 3*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == uint64(len(evs)), fmt.Sprint(n)
	})
	stop()
	total, err := st.CallsTotal(context.Background(), store.CallsQuery{Tenant: "acme", From: base, To: base.Add(time.Hour)})
	if err != nil || total != 594 { // 600 minus 6 tool definitions
		t.Fatalf("calls in the per-minute rollup: %d (err %v), want 594", total, err)
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
