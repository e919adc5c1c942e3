package event_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestSecurityEscapedIdentityStillDetected: the escapes written into
// identity fields are spellings the rules' hasANSIEscape and
// hasHiddenUnicode recognise, so a rule over tool_name or user_id still
// fires after the mapping neutralised the characters.
func TestSecurityEscapedIdentityStillDetected(t *testing.T) {
	cases := []struct {
		name, value string
		ansi        bool
	}{
		{"CSI", "ls\x1b[31m", true},
		{"OSC", "x\x1b]0;t\x07", true},
		{"RLO", "\u202eelif_daer", false},
		{"zero width", "read\u200bfile", false},
		{"tag characters", "read\U000E0072\U000E0065", false},
	}
	for _, c := range cases {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
		sp.SetKind(ptrace.SpanKindClient)
		sp.Attributes().PutStr("mcp.method.name", "tools/call")
		sp.Attributes().PutStr("gen_ai.tool.name", c.value)
		sp.Attributes().PutStr("user.id", c.value)
		b := event.FromTraces(td, event.MapOptions{})
		if len(b.Events) != 1 {
			t.Fatalf("%s: %d events", c.name, len(b.Events))
		}
		e := b.Events[0]
		if e.ToolName == c.value {
			t.Errorf("%s: tool_name stored raw", c.name)
		}
		for _, f := range []string{e.ToolName, e.UserID} {
			if c.ansi && !secfn.HasANSIEscape(f) || !c.ansi && !secfn.HasHiddenUnicode(f) {
				t.Errorf("%s: %q no longer detected", c.name, f)
			}
		}
	}
}
