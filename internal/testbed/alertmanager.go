package testbed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AlertmanagerBinary is where scripts/install-alertmanager.sh builds it.
func AlertmanagerBinary() string { return filepath.Join(CacheDir(), "bin", "alertmanager") }

// alertmanagerConfig routes everything to a receiver with no integrations,
// so alerts are kept and grouped but sent nowhere; group_wait is short so
// groups show up quickly.
const alertmanagerConfig = `route:
  receiver: blackhole
  group_by: ['alertname', 'tenant', 'rule_id']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blackhole
`

// StartAlertmanager runs the Alertmanager binary with a minimal config and
// data in dir on a free loopback port, waits until /-/ready answers, and
// returns its base URL ("http://127.0.0.1:port") and a stop function.
func StartAlertmanager(ctx context.Context, dir string) (string, func(), error) {
	var err error
	// A free port can be taken between choosing and binding; start again on
	// another, in a fresh directory, a few times (as StartApacheKafka).
	for attempt := range 3 {
		var url string
		var stop func()
		url, stop, err = startAlertmanagerOnce(ctx, filepath.Join(dir, fmt.Sprint("attempt-", attempt)))
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			return url, stop, err
		}
	}
	return "", nil, err
}

func startAlertmanagerOnce(ctx context.Context, dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	bin := AlertmanagerBinary()
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("cannot find alertmanager at %s (%s): %w", bin, installHint, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagerConfig), 0o644); err != nil {
		return "", nil, fmt.Errorf("cannot write alertmanager config: %w", err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	logPath := filepath.Join(dir, "alertmanager.log")
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		// Disable clustering (a single local instance needs no gossip).
		"--cluster.listen-address=",
		"--log.level=warn",
	)
	cmd.Dir = dir
	p, err := startProc(cmd, logPath)
	if err != nil {
		return "", nil, err
	}
	stop := func() { p.stop(10 * time.Second) }
	base := "http://" + listen
	err = waitFor(60*time.Second, p, func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("cannot start alertmanager: %w\n%s", err, tail(logPath, 2000))
	}
	return base, stop, nil
}

// Alertmanager starts a real Alertmanager for the test and stops it in
// t.Cleanup; it returns the base URL (POST {url}/api/v2/alerts, GET
// {url}/api/v2/alerts/groups). Fails, never skips, when it is not installed.
func Alertmanager(t testing.TB) string {
	t.Helper()
	url, stop, err := StartAlertmanager(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(stop)
	return url
}
