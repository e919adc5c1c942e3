package realsenders

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// repoRoot is the checkout (go test runs in the package directory).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// missing fails the test when a runtime is absent: scripts/install-deps.sh
// (run by make test) installs every one, as it installs ClickHouse and Kafka
// for the other suites, which fail the same way without them.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Fatalf(format+"; run scripts/install-deps.sh", args...)
}

// call is one request the scenario runner says it made.
type call struct {
	Step      string         // python: benign, attack:…, discovery, connect; typescript: attack rule id or ""
	Server    string         // the MCP server's name
	Method    string         // tools/call, tools/list, server/discover, initialize
	Tool      string         // tools/call
	Arguments map[string]any // tools/call
	Outcome   string         // ok, tool_error, error ("" when the runner does not say)
	RequestID string         // JSON-RPC id, when the runner knows it
	TraceID   string         // when the runner knows it
}

// run is what a runner printed.
type run struct {
	Calls   []call
	AgentID string // the agent_id mcpwatch should give the client's observations
	Raw     []byte
}

// pythonVenv is the venv scenarios/run.py uses for a stack.
func pythonVenv(stack string) string {
	name := strings.TrimSuffix(stack, "+capture")
	return filepath.Join(testbed.CacheDir(), "venv-mcp-"+name)
}

// runPython runs instrumentation/python/scenarios/run.py for stack.
func runPython(t *testing.T, stack, endpoint, token string) run {
	t.Helper()
	venv := pythonVenv(stack)
	if _, err := os.Stat(filepath.Join(venv, "bin", "python")); err != nil {
		missing(t, "no %s (scripts/install-instrumentation-python.sh)", venv)
	}
	script := filepath.Join(repoRoot(t), "instrumentation", "python", "scenarios", "run.py")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), script, "--stack", stack,
		"--endpoint", endpoint, "--token", token, "--timeout", "120")
	cmd.Env = append(os.Environ(), "MCPWATCH_CACHE="+testbed.CacheDir())
	out := runCmd(t, cmd)
	var r struct {
		OK    bool `json:"ok"`
		Agent struct {
			Service  string `json:"service.name"`
			Instance string `json:"service.instance.id"`
		} `json:"agent"`
		Calls []struct {
			Step      string         `json:"step"`
			Server    string         `json:"server"`
			Method    string         `json:"method"`
			Tool      string         `json:"tool"`
			Arguments map[string]any `json:"arguments"`
			Outcome   string         `json:"outcome"`
			RequestID string         `json:"request_id"`
			TraceID   string         `json:"trace_id"`
		} `json:"calls"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("run.py printed no JSON summary: %v\n%s", err, out)
	}
	if !r.OK || len(r.Errors) > 0 {
		t.Fatalf("run.py --stack %s failed: %v\n%s", stack, r.Errors, out)
	}
	res := run{AgentID: r.Agent.Service + "/" + r.Agent.Instance, Raw: out}
	connect := "server/discover"
	if stack == "openllmetry" {
		connect = "initialize" // mcp 1.30
	}
	for _, c := range r.Calls {
		m := c.Method
		if c.Step == "connect" {
			m = connect
		}
		res.Calls = append(res.Calls, call{Step: c.Step, Server: c.Server, Method: m, Tool: c.Tool, Arguments: c.Arguments,
			Outcome: c.Outcome, RequestID: c.RequestID, TraceID: c.TraceID})
	}
	return res
}

var (
	tsBuildOnce sync.Once
	tsBuildDir  string
	tsBuildErr  error
)

// buildTypeScript compiles instrumentation/typescript (tsc, from its
// node_modules) into a temporary directory once per test binary, so the
// runner always matches the sources and the checkout's dist/ is left alone.
func buildTypeScript(t *testing.T) (dir, nodePath string) {
	t.Helper()
	pkg := filepath.Join(repoRoot(t), "instrumentation", "typescript")
	nodePath = filepath.Join(pkg, "node_modules")
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "no node on PATH")
	}
	tsc := filepath.Join(nodePath, "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		missing(t, "no %s (npm install in instrumentation/typescript)", tsc)
	}
	tsBuildOnce.Do(func() {
		d, err := os.MkdirTemp("", "mcpwatch-realsenders-ts-")
		if err != nil {
			tsBuildErr = err
			return
		}
		cmd := exec.Command("node", tsc, "-p", filepath.Join(pkg, "tsconfig.json"), "--outDir", d)
		if out, err := cmd.CombinedOutput(); err != nil {
			tsBuildErr = fmt.Errorf("tsc: %v\n%s", err, out)
			return
		}
		tsBuildDir = d
	})
	if tsBuildErr != nil {
		t.Fatal(tsBuildErr)
	}
	return tsBuildDir, nodePath
}

// runTypeScript runs instrumentation/typescript's scenarios/run.js for stack.
func runTypeScript(t *testing.T, stack, endpoint, token string) run {
	t.Helper()
	dir, nodePath := buildTypeScript(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "scenarios", "run.js"), "--stack", stack,
		"--endpoint", endpoint, "--token", token)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath)
	out := runCmd(t, cmd)
	var r struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
		OTLP struct {
			SpansFailed int      `json:"spans_failed"`
			Errors      []string `json:"errors"`
		} `json:"otlp"`
		Requests []struct {
			Method    string         `json:"method"`
			Tool      string         `json:"tool"`
			Arguments map[string]any `json:"arguments"`
			Attack    string         `json:"attack"`
			IsError   *bool          `json:"is_error"`
			Error     string         `json:"error"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("run.js printed no JSON summary: %v\n%s", err, out)
	}
	if r.OTLP.SpansFailed > 0 || len(r.OTLP.Errors) > 0 {
		t.Fatalf("run.js --stack %s: export failed: %v", stack, r.OTLP.Errors)
	}
	// Both stacks' agent resource: service.name scenario-agent,
	// service.instance.id scenario-agent-1 (run.ts).
	res := run{AgentID: "scenario-agent/scenario-agent-1", Raw: out}
	for _, q := range r.Requests {
		if q.Error != "" {
			t.Fatalf("run.js --stack %s: %s %s failed: %s", stack, q.Method, q.Tool, q.Error)
		}
		c := call{Step: q.Attack, Server: r.Server.Name, Method: q.Method, Tool: q.Tool, Arguments: q.Arguments}
		if q.IsError != nil {
			c.Outcome = "ok"
			if *q.IsError {
				c.Outcome = "tool_error"
			}
		}
		res.Calls = append(res.Calls, c)
		if q.Tool == "list_directory" {
			// The server asks the client for its roots while handling it
			// (world.ts): a server → client request.
			res.Calls = append(res.Calls, call{Step: "reverse", Server: r.Server.Name, Method: "roots/list"})
		}
	}
	return res
}

// runCmd runs cmd, returns its stdout, fails the test on a non-zero exit
// (with stderr's tail).
func runCmd(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e := stderr.String()
		if len(e) > 4000 {
			e = e[len(e)-4000:]
		}
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stdout.String(), e)
	}
	return stdout.Bytes()
}
