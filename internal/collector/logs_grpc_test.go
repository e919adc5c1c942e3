package collector

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestAuditLogsGRPC sends mcp.audit log records (the gateway shape) over
// OTLP/gRPC, with one unrelated record that must be ignored.
func TestAuditLogsGRPC(t *testing.T) {
	k := testbed.Kfake(t)
	c := startCollector(t, k.Brokers, nil)
	waitReady(t, c)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "mcp-gateway")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 4; i++ {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(time.Duration(i) * time.Millisecond)))
		lr.SetEventName("mcp.audit")
		a := lr.Attributes()
		a.PutStr("event.name", "mcp.audit")
		a.PutStr("mcp.method.name", "tools/call")
		a.PutStr("gen_ai.tool.name", "send_email")
		a.PutStr("user.id", "alice")
		a.PutStr("mcp.client.name", "claude-desktop")
		a.PutInt("seq", int64(i))
		a.PutStr("gen_ai.tool.call.arguments", secretArg)
	}
	lrs.AppendEmpty().Body().SetStr("unrelated")

	cc, err := grpc.NewClient(c.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
	resp, err := plogotlp.NewGRPCClient(cc).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	if err != nil {
		t.Fatal(err)
	}
	if n := resp.PartialSuccess().RejectedLogRecords(); n != 0 {
		t.Errorf("rejected %d (%s); the unrelated record must be ignored, not rejected", n, resp.PartialSuccess().ErrorMessage())
	}
	evs := decodeAll(t, readTopic(t, k.Brokers, testTopic))
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	for _, e := range evs {
		if e.Source != event.SourceLog || e.Tenant != testTenant || e.ToolName != "send_email" || e.UserID != "alice" {
			t.Errorf("source/tenant/tool/user = %q/%q/%q/%q", e.Source, e.Tenant, e.ToolName, e.UserID)
		}
		checkRedacted(t, e)
	}
}
