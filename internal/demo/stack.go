// Package demo runs mcpwatch's whole pipeline on one machine — ClickHouse,
// an embedded Kafka (kfake), the collector and the analyzer as child
// processes built from cmd/, and a local webhook receiver — replays the demo
// scenario (benign agent traffic with embedded attacks) over OTLP, and
// reports what arrived: events by tool and outcome, tool definitions and
// incidents. `make demo` runs it through cmd/demo; its test runs the same
// scenario and checks what was found.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// Options configures a demo run.
type Options struct {
	// Dir holds every data dir, config and log; "" = a new temp dir that is
	// removed at the end (unless Keep).
	Dir string
	// RepoRoot is the module root to build cmd/collector and cmd/analyzer
	// from; "" = found by walking up from the working directory.
	RepoRoot string
	// Seed of the scenario. Default 1.
	Seed int64
	// Tenants maps each tenant of the scenario to its bearer token; generated
	// when nil.
	Tenants map[string]string
	// Log receives progress; default discards.
	Log *slog.Logger
}

// Stack is the running pipeline.
type Stack struct {
	Dir          string
	CH           *testbed.CH
	Kafka        *testbed.Kafka
	Topic        string
	OTLPHTTP     string // http://127.0.0.1:port
	OTLPGRPC     string // 127.0.0.1:port
	CollectorAdm string // http://127.0.0.1:port (/healthz, /readyz, /metrics)
	AnalyzerURL  string // http://127.0.0.1:port ("" when no analyzer binary)
	APIToken     string // admin bearer token for the analyzer API
	Webhook      *Receiver
	Tokens       map[string]string // tenant → OTLP bearer token

	log      *slog.Logger
	ownDir   bool
	closers  []func()
	children map[string]*testbed.Process
	logs     map[string]string
}

// Close stops everything in reverse order of start and removes the temp dir
// the stack created. Safe to call twice.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if s.ownDir && s.Dir != "" {
		os.RemoveAll(s.Dir)
		s.Dir = ""
	}
}

// LogPath is the log file of a child ("collector", "analyzer").
func (s *Stack) LogPath(name string) string { return s.logs[name] }

// Start brings up the pipeline. On error everything started so far is
// stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Stack{Dir: o.Dir, log: o.Log, Topic: "mcpwatch.events.v1",
		children: map[string]*testbed.Process{}, logs: map[string]string{}}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "mcpwatch-demo-"); err != nil {
			return nil, fmt.Errorf("cannot create demo dir: %w", err)
		}
		s.ownDir = true
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	root := o.RepoRoot
	if root == "" {
		if root, err = findRepoRoot(); err != nil {
			return nil, err
		}
	}
	s.Tokens = o.Tenants
	if s.Tokens == nil {
		s.Tokens = map[string]string{"acme": randomToken(), "globex": randomToken()}
	}
	s.APIToken = randomToken()

	// Build the binaries first: it is the slowest step on a cold cache.
	bins := filepath.Join(s.Dir, "bin")
	s.log.Info("building mcpwatch binaries", "from", root)
	collectorBin, err := goBuild(ctx, root, "./cmd/collector", bins)
	if err != nil {
		return nil, err
	}
	analyzerBin := ""
	if _, statErr := os.Stat(filepath.Join(root, "cmd", "analyzer")); statErr == nil {
		if analyzerBin, err = goBuild(ctx, root, "./cmd/analyzer", bins); err != nil {
			return nil, err
		}
	}

	s.log.Info("starting ClickHouse")
	chs, stopCH, err := testbed.StartClickHouse(ctx, filepath.Join(s.Dir, "clickhouse"))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, stopCH)
	if s.CH, err = chs.CreateDatabase(ctx, "mcpwatch"); err != nil {
		return nil, err
	}

	s.log.Info("starting embedded Kafka (kfake)")
	if s.Kafka, err = testbed.StartKfake(filepath.Join(s.Dir, "kafka")); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Kafka.Stop)
	if err := s.Kafka.CreateTopic(ctx, s.Topic, 6); err != nil {
		return nil, err
	}

	if s.Webhook, err = StartReceiver(); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Webhook.Close)

	s.log.Info("starting collector")
	if err := s.startCollector(ctx, collectorBin); err != nil {
		return nil, err
	}
	if analyzerBin != "" {
		s.log.Info("starting analyzer")
		if err := s.startAnalyzer(ctx, analyzerBin, root); err != nil {
			return nil, err
		}
	} else {
		s.log.Warn("cmd/analyzer not found: running without the analyzer (events stay in Kafka)")
	}
	return s, nil
}

func (s *Stack) startCollector(ctx context.Context, bin string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	var tokens strings.Builder
	for tenant, tok := range s.Tokens {
		fmt.Fprintf(&tokens, "      - tenant: %s\n        token_env: MCPWATCH_DEMO_TOKEN_%s\n", tenant, strings.ToUpper(tenant))
		_ = tok
	}
	cfg := fmt.Sprintf(`receiver:
  grpc:
    endpoint: 127.0.0.1:%d
  http:
    endpoint: 127.0.0.1:%d
  auth:
    tokens:
%skafka:
  brokers: [%s]
  topic: %s
admin:
  endpoint: 127.0.0.1:%d
redact:
  key_file: %q
log:
  level: info
  format: text
`, ports[0], ports[1], tokens.String(), strings.Join(s.Kafka.Brokers, ", "), s.Topic, ports[2], filepath.Join(s.Dir, "redact.key"))
	path := filepath.Join(s.Dir, "collector.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("cannot write collector config: %w", err)
	}
	cmd := exec.Command(bin, "--config", path)
	cmd.Env = os.Environ()
	for tenant, tok := range s.Tokens {
		cmd.Env = append(cmd.Env, "MCPWATCH_DEMO_TOKEN_"+strings.ToUpper(tenant)+"="+tok)
	}
	s.OTLPGRPC = "127.0.0.1:" + strconv.Itoa(ports[0])
	s.OTLPHTTP = "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.CollectorAdm = "http://127.0.0.1:" + strconv.Itoa(ports[2])
	return s.startChild(ctx, "collector", cmd, s.CollectorAdm+"/readyz")
}

// startChild starts a child process, registers its stop, and waits until
// readyURL answers 200.
func (s *Stack) startChild(ctx context.Context, name string, cmd *exec.Cmd, readyURL string) error {
	logPath := filepath.Join(s.Dir, name+".log")
	s.logs[name] = logPath
	cmd.Dir = s.Dir
	p, err := testbed.StartProcess(cmd, logPath)
	if err != nil {
		return err
	}
	s.children[name] = p
	s.closers = append(s.closers, func() { p.Stop(30 * time.Second) })
	err = p.WaitFor(90*time.Second, func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return httpOK(ctx, readyURL, "")
	})
	if err != nil {
		return fmt.Errorf("cannot start %s: %w\n%s", name, err, testbed.Tail(logPath, 3000))
	}
	return nil
}

func httpOK(ctx context.Context, url, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// goBuild builds pkg (relative to root) into dir and returns the binary.
func goBuild(ctx context.Context, root, pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// findRepoRoot walks up from the working directory to mcpwatch's go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot get working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/mcpwatch/mcpwatch\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the mcpwatch module root (run from inside the repository)")
		}
		dir = parent
	}
}

func freePorts(n int) ([]int, error) {
	out := make([]int, 0, n)
	seen := map[int]bool{}
	for len(out) < n {
		p, err := testbed.FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
