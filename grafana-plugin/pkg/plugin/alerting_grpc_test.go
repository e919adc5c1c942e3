package plugin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// grpcData sends QueryData to a plugin process over gRPC, as Grafana does.
type grpcData struct{ c pluginv2.DataClient }

func (g grpcData) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	res, err := g.c.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
	if err != nil {
		return nil, err
	}
	return backend.FromProto().QueryDataResponse(res)
}

// TestAlertRuleEvaluatesThroughPluginBinary builds the plugin executable,
// starts it as Grafana starts a backend plugin (go-plugin, protocol 2,
// gRPC) and evaluates the provisioned denial-rate rule through its data
// source QueryData with data source instance settings, as Grafana alerting
// does for a rule on the mcpwatch data source.
func TestAlertRuleEvaluatesThroughPluginBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gpx_mcpwatch")
	if out, err := exec.Command("go", "build", "-o", bin, "../../pkg").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GF_VERSION=13.2.2")
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{ProtocolVersion: grpcplugin.ProtocolVersion,
			MagicCookieKey: grpcplugin.MagicCookieKey, MagicCookieValue: grpcplugin.MagicCookieValue},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: {"data": &grpcplugin.DataGRPCPlugin{}, "diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{}}},
		Cmd:              cmd, AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:       hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr}),
		StartTimeout: 30 * time.Second,
	})
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	d, err := rpc.Dispense("data")
	if err != nil {
		t.Fatal(err)
	}
	rules := provisionedRules(t)
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_alerts_grpc")
	now := time.Now().UTC()
	for _, b := range []struct {
		agent  string
		denied int
	}{{"agent-alpha", 8}, {"agent-bravo", 1}} {
		if err := seed.Burst(ctx, conn, db, "default", b.agent, now.Add(-3*time.Minute), 10, b.denied); err != nil {
			t.Fatal(err)
		}
	}
	firing, all := evaluate(t, grpcData{d.(pluginv2.DataClient)}, dataSourceContext(t, db, nil), rules["mcpwatch-denial-rate-spike"], time.Now())
	if !slices.Equal(firing, []string{"agent=agent-alpha"}) || !slices.Equal(all, []string{"agent=agent-alpha", "agent=agent-bravo"}) {
		t.Errorf("through the plugin binary: firing %q of %q", firing, all)
	}
	// The same process still answers as the app, with the app's settings.
	diag, err := rpc.Dispense("diagnostics")
	if err != nil {
		t.Fatal(err)
	}
	jd := []byte(`{"clickhouseAddress":"` + chAddr + `","database":"` + db + `"}`)
	h, err := diag.(pluginv2.DiagnosticsClient).CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: &pluginv2.PluginContext{OrgId: 1, PluginId: ID,
		AppInstanceSettings: &pluginv2.AppInstanceSettings{JsonData: jd, LastUpdatedMS: time.Now().UnixMilli()}}})
	if err != nil || h.Status != pluginv2.CheckHealthResponse_OK {
		t.Errorf("app health through the plugin binary: %v %+v", err, h)
	}
}
