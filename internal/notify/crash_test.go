package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

const childEnv = "MCPWATCH_NOTIFY_CRASH_CHILD"

// childMain is the deliverer process of TestKill9DuringDeliveryLosesNothing:
// it enqueues N messages (a no-op for those already pending or delivered)
// and delivers until none is pending.
func childMain() int {
	dir, url := os.Getenv(childEnv), os.Getenv("CHILD_URL")
	count, _ := strconv.Atoi(os.Getenv("CHILD_N"))
	n, err := notify.New(notify.Config{
		DataDir: dir, Workers: 1, InitialBackoff: 10 * time.Millisecond,
		Receivers: []notify.ReceiverConfig{{Name: "hook", Type: notify.TypeWebhook, URL: url}},
	}, notify.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	inc, _ := sampleIncident()
	for i := range count {
		inc.IncidentID = fmt.Sprintf("inc-%03d", i)
		if err := n.Send(context.Background(), "hook", inc, nil, "", "crash-test", "msg-"+strconv.Itoa(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Run(ctx); close(done) }()
	for n.Pending() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	return 0
}

func TestKill9DuringDeliveryLosesNothing(t *testing.T) {
	const total, stallAt = 20, 8
	var mu sync.Mutex
	got := map[string]int{}
	stalled := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		got[key]++
		n := len(got)
		mu.Unlock()
		if n == stallAt {
			once.Do(func() { close(stalled) })
			<-release // the receiver hangs; the deliverer is killed meanwhile
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	dir := t.TempDir()
	start := func() *exec.Cmd {
		return testbed.StartTestChild(t, childEnv+"="+dir, "CHILD_URL="+srv.URL, "CHILD_N="+strconv.Itoa(total))
	}
	first := start()
	select {
	case <-stalled:
	case <-time.After(60 * time.Second):
		_ = first.Process.Kill()
		t.Fatal("receiver never reached the stall point")
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = first.Wait()
	mu.Lock()
	before := len(got)
	mu.Unlock()
	if before >= total {
		t.Fatalf("everything was delivered before the kill (%d)", before)
	}
	close(release)
	second := start()
	if err := second.Wait(); err != nil {
		t.Fatalf("restarted deliverer: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{}
	for i := range total {
		want[notify.MessageID("hook", "msg-"+strconv.Itoa(i))] = true
	}
	dups := 0
	for k, c := range got {
		if !want[k] {
			t.Fatalf("unexpected key %s", k)
		}
		dups += c - 1
	}
	if len(got) != total {
		t.Fatalf("delivered %d distinct messages, want %d", len(got), total)
	}
	// Only the request in flight at the kill may arrive twice (Workers=1).
	if dups > 1 {
		t.Fatalf("%d duplicate deliveries, want ≤ 1", dups)
	}
	t.Logf("delivered %d before kill, %d distinct after restart, %d duplicate(s) deduplicated by Idempotency-Key", before, len(got), dups)
}

var _ = incident.StatusOpen
