package collector

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// telemetrygenPath finds telemetrygen (scripts/install-deps.sh installs it
// into the cache bin dir).
func telemetrygenPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("telemetrygen"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	for _, p := range []string{filepath.Join(testbed.CacheDir(), "bin", "telemetrygen"), filepath.Join(home, "go", "bin", "telemetrygen")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("telemetrygen not found: run scripts/install-deps.sh (installs it into $MCPWATCH_CACHE/bin)")
	return ""
}

// TestTelemetrygen sends MCP-attributed traces with the OTel project's load
// generator over gRPC and HTTP and counts what reached Kafka.
func TestTelemetrygen(t *testing.T) {
	bin := telemetrygenPath(t)
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	const traces, children = 40, 2 // every span carries the MCP attributes
	for _, transport := range []string{"grpc", "http"} {
		args := []string{"traces", "--traces", "40", "--workers", "1", "--rate", "0", "--child-spans", "2",
			"--otlp-insecure", "--otlp-header", `Authorization="Bearer ` + testToken + `"`,
			"--service", "telemetrygen-mcp",
			"--telemetry-attributes", `mcp.method.name="tools/call"`,
			"--telemetry-attributes", `gen_ai.tool.name="search_docs"`,
			"--telemetry-attributes", `mcp.session.id="tg-session"`,
			"--telemetry-attributes", `gen_ai.tool.call.arguments="{\"q\":\"x\"}"`}
		if transport == "http" {
			args = append(args, "--otlp-http", "--otlp-endpoint", c.HTTPAddr())
		} else {
			args = append(args, "--otlp-endpoint", c.GRPCAddr())
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("telemetrygen %s: %v\n%s", transport, err, out)
		}
		if strings.Contains(string(out), "failed to upload") || strings.Contains(string(out), "traces export:") {
			t.Errorf("telemetrygen %s reported export errors:\n%s", transport, out)
		}
	}
	evs := decodeAll(t, readTopic(t, k.Brokers, testTopic))
	want := 2 * traces * (1 + children)
	ids := map[string]bool{}
	for _, e := range evs {
		ids[e.EventID] = true
		if e.Method != "tools/call" || e.ToolName != "search_docs" || e.Tenant != testTenant || e.ServiceName != "telemetrygen-mcp" {
			t.Fatalf("event method/tool/tenant/service = %q/%q/%q/%q", e.Method, e.ToolName, e.Tenant, e.ServiceName)
		}
	}
	if len(evs) != want || len(ids) != want {
		t.Errorf("%d records (%d distinct events) in Kafka, want %d", len(evs), len(ids), want)
	}
}
