package playbook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/incident/incidenttest"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

const crashChildEnv = "MCPWATCH_PLAYBOOK_CRASH_CHILD"

const crashPlaybook = `name: crash
when: "true"
steps:
  - name: disable-tool
    http: {url: "${env:CRASH_GATEWAY}/admin/servers/fs/tools/read_file/disable"}
  - name: revoke-session
    http: {url: "${env:CRASH_GATEWAY}/admin/sessions/s1/revoke", timeout: 1m}
`

// crashChild runs the runner in a separate process, on the ClickHouse
// database the test made, until the run completes.
func crashChild() int {
	pb, err := playbook.Parse([]byte(crashPlaybook))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ch := testbed.CH{Addr: os.Getenv("CRASH_CLICKHOUSE"), Database: os.Getenv(crashChildEnv), Username: "default"}
	conn, err := ch.Open(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer conn.Close()
	st, err := playbook.NewCHStore(conn, ch.Database)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := playbook.New(playbook.Config{Playbooks: []*playbook.Playbook{pb}, Store: st,
		PollInterval: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := r.Reload(context.Background(), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	inc := incident.Incident{IncidentID: "inc-crash", Tenant: "acme", Status: incident.StatusOpen, Severity: "high"}
	r.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeOpened, Incident: inc}) // no-op when the run exists
	id := playbook.RunID("crash", "inc-crash")
	for {
		if run, ok := r.Get(id); ok && run.Status == playbook.RunCompleted {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	return 0
}

// TestKill9DuringHTTPStepResumes kills the runner process while the
// gateway holds the second http step, restarts it, and checks the first
// step is not sent again and the second is retried with the same
// Idempotency-Key.
func TestKill9DuringHTTPStepResumes(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]string{} // path → idempotency keys
	stalled := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path] = append(calls[r.URL.Path], r.Header.Get("Idempotency-Key"))
		first := len(calls[r.URL.Path]) == 1
		mu.Unlock()
		if r.URL.Path == "/admin/sessions/s1/revoke" && first {
			once.Do(func() { close(stalled) })
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(gw.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	ch := testbed.ClickHouse(t)
	incidenttest.Migrate(t, ch.Conn(t), ch.Database)
	start := func() *exec.Cmd {
		return testbed.StartTestChild(t, crashChildEnv+"="+ch.Database, "CRASH_CLICKHOUSE="+ch.Addr, "CRASH_GATEWAY="+gw.URL)
	}
	first := start()
	select {
	case <-stalled:
	case <-time.After(60 * time.Second):
		_ = first.Process.Kill()
		t.Fatal("the second step never reached the gateway")
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL mid-request
		t.Fatal(err)
	}
	_ = first.Wait()
	second := start()
	if err := second.Wait(); err != nil {
		t.Fatalf("restarted runner: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	id := playbook.RunID("crash", "inc-crash")
	if got := calls["/admin/servers/fs/tools/read_file/disable"]; len(got) != 1 || got[0] != id+"/disable-tool" {
		t.Fatalf("completed step re-sent or keyed wrong: %v", got)
	}
	got := calls["/admin/sessions/s1/revoke"]
	if len(got) != 2 || got[0] != id+"/revoke-session" || got[1] != got[0] {
		t.Fatalf("in-flight step after restart: %v (want the same key twice)", got)
	}
}
