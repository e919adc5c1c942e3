package event

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestAttributeTable has exactly one case per row of attributeTable: the
// attribute alone on an MCP span (or log) must land in its canonical field.
func TestAttributeTable(t *testing.T) {
	msg := func(b Batch) *Event { return &b.Events[0] }
	str := func(f func(e *Event) string) func(Batch) string { return func(b Batch) string { return f(msg(b)) } }
	type tc struct {
		val  any // string, int64 or []string
		want string
		got  func(Batch) string
		log  bool // map as an mcp.audit log record instead of a span
	}
	method := str(func(e *Event) string { return e.Method })
	tool := str(func(e *Event) string { return e.ToolName })
	reqID := str(func(e *Event) string { return e.RequestID })
	status := str(func(e *Event) string { return strconv.Itoa(int(e.StatusCode)) })
	session := str(func(e *Event) string { return e.SessionID })
	server := str(func(e *Event) string { return e.ServerName })
	client := str(func(e *Event) string { return e.ClientName })
	outcome := str(func(e *Event) string { return string(e.Outcome) })
	subject := str(func(e *Event) string { return e.TokenSubject })
	scopes := str(func(e *Event) string { return strings.Join(e.Scopes, " ") })
	expires := str(func(e *Event) string { return strconv.FormatInt(e.TokenExpires.Unix(), 10) })
	desc := str(func(e *Event) string { return e.ToolDescription })
	schema := str(func(e *Event) string { return e.ToolInputSchema })
	annot := str(func(e *Event) string { return e.ToolAnnotations })
	args := str(func(e *Event) string { return e.Arguments })
	result := str(func(e *Event) string { return e.Result })
	transport := str(func(e *Event) string { return e.Transport })
	proto := str(func(e *Event) string { return e.ProtocolVersion })
	uri := str(func(e *Event) string { return e.ResourceURI })
	prompt := str(func(e *Event) string { return e.PromptName })
	user := str(func(e *Event) string { return e.UserID })
	origin := str(func(e *Event) string { return e.Origin })

	cases := map[string]tc{
		"mcp.method.name":            {"resources/read", "resources/read", method, false},
		"mcp.protocol.version":       {"2025-06-18", "2025-06-18", proto, false},
		"mcp.session.id":             {"s1", "s1", session, false},
		"mcp.resource.uri":           {"file:///x", "file:///x", uri, false},
		"jsonrpc.request.id":         {"7", "7", reqID, false},
		"network.transport":          {"pipe", "pipe", transport, false},
		"rpc.response.status_code":   {"-32601", "-32601", status, false},
		"error.type":                 {"timeout", "timeout", str(func(e *Event) string { return e.ErrorType }), false},
		"gen_ai.operation.name":      {"execute_tool", "tools/call", method, false},
		"gen_ai.tool.name":           {"t1", "t1", tool, false},
		"gen_ai.tool.call.id":        {"c1", "c1", str(func(e *Event) string { return e.ToolCallID }), false},
		"gen_ai.tool.call.arguments": {`{"a":1}`, `{"a":1}`, args, false},
		"gen_ai.tool.call.result":    {`{"r":1}`, `{"r":1}`, result, false},
		"gen_ai.tool.description":    {"does x", "does x", desc, false},
		"gen_ai.tool.definitions":    {`[{"name":"a"},{"name":"b"}]`, "3", func(b Batch) string { return strconv.Itoa(len(b.Events)) }, false},
		"gen_ai.prompt.name":         {"p1", "p1", prompt, false},
		"gen_ai.conversation.id":     {"conv", "conv", str(func(e *Event) string { return e.ConversationID }), false},
		"gen_ai.agent.id":            {"ag", "ag", str(func(e *Event) string { return e.AgentID }), false},
		"gen_ai.agent.name":          {"Agent", "Agent", str(func(e *Event) string { return e.AgentName }), false},
		"user.id":                    {"u1", "u1", user, false},
		"enduser.id":                 {"u2", "u2", user, false},
		"client.address":             {"10.0.0.9", "10.0.0.9", str(func(e *Event) string { return e.ClientAddress }), false},
		"server.address":             {"h.example", "h.example", str(func(e *Event) string { return e.ServerAddress }), false},
		"server.port":                {int64(9000), "9000", str(func(e *Event) string { return strconv.Itoa(int(e.ServerPort)) }), false},
		"user_agent.original":        {"ua/1", "ua/1", str(func(e *Event) string { return e.UserAgent }), false},
		"http.request.header.origin": {[]string{"http://o.example"}, `["http://o.example"]`, origin, false},
		"event.name":                 {LogEventAudit, "tools/call", method, true},
		"mcpwatch.observer":          {"gateway", "gateway", str(func(e *Event) string { return string(e.Observer) }), false},
		"mcpwatch.tenant":            {"spoof", "default", str(func(e *Event) string { return e.Tenant }), false},
		"mcpwatch.client_name":       {"c", "c", client, false},
		"mcpwatch.client_version":    {"1", "1", str(func(e *Event) string { return e.ClientVersion }), false},
		"mcpwatch.server_name":       {"s", "s", server, false},
		"mcpwatch.server_version":    {"2", "2", str(func(e *Event) string { return e.ServerVersion }), false},
		"mcpwatch.origin":            {"http://o2", "http://o2", origin, false},
		"mcpwatch.decision":          {"blocked", "denied", outcome, false},
		"mcpwatch.token_subject":     {"sub", "sub", subject, false},
		"mcpwatch.token_audience":    {"aud", "aud", str(func(e *Event) string { return e.TokenAudience }), false},
		"mcpwatch.token_expires":     {"2030-01-01T00:00:00Z", "1893456000", expires, false},
		"mcpwatch.scopes":            {"a b,c", "a b c", scopes, false},
		"mcpwatch.tool_input_schema": {`{"b":1,"a":2}`, `{"a":2,"b":1}`, schema, false},
		"mcpwatch.tool_annotations":  {`{"y":true,"x":false}`, `{"x":false,"y":true}`, annot, false},
		"mcpwatch.is_error":          {"true", "tool_error", outcome, false},
		"mcp.method":                 {"prompts/list", "prompts/list", method, false},
		"mcp.tool.name":              {"t2", "t2", tool, false},
		"mcp.tool":                   {"t3", "t3", tool, false},
		"tool.name":                  {"t4", "t4", tool, false},
		"mcp.tool.description":       {"d2", "d2", desc, false},
		"mcp.tool.input_schema":      {`{"z":1}`, `{"z":1}`, schema, false},
		"mcp.tool.annotations":       {`{"q":1}`, `{"q":1}`, annot, false},
		"mcp.tool.arguments":         {`{"x":"y"}`, `{"x":"y"}`, args, false},
		"mcp.tool.result":            {"ok", "ok", result, false},
		"mcp.request.id":             {"r1", "r1", reqID, false},
		"rpc.jsonrpc.request_id":     {"r2", "r2", reqID, false},
		"mcp.request_id":             {"r3", "r3", reqID, false},
		"rpc.jsonrpc.error_code":     {int64(-32603), "-32603", status, false},
		"jsonrpc.error.code":         {"-32700", "-32700", status, false},
		"mcp.error.code":             {int64(-32000), "-32000", status, false},
		"mcp.session_id":             {"s2", "s2", session, false},
		"session.id":                 {"s3", "s3", session, false},
		"mcp.server.name":            {"srv", "srv", server, false},
		"mcp.server":                 {"srv2", "srv2", server, false},
		"fastmcp.server.name":        {"srv3", "srv3", server, false},
		"mcp.server.version":         {"3", "3", str(func(e *Event) string { return e.ServerVersion }), false},
		"mcp.client.name":            {"cl", "cl", client, false},
		"mcp.client.version":         {"4", "4", str(func(e *Event) string { return e.ClientVersion }), false},
		"mcp.transport":              {"sse", "sse", transport, false},
		"mcp.protocol_version":       {"2024-11-05", "2024-11-05", proto, false},
		"mcp.resource.name":          {"res", "res", uri, false},
		"mcp.resource_template.uri":  {"tmpl://{x}", "tmpl://{x}", uri, false},
		"mcp.prompt.name":            {"p2", "p2", prompt, false},
		"mcp.gateway.decision":       {"deny", "denied", outcome, false},
		"gateway.decision":           {"reject", "denied", outcome, false},
		"authz.decision":             {"Deny", "denied", outcome, false},
		"mcp.auth.subject":           {"sub2", "sub2", subject, false},
		"auth.subject":               {"sub3", "sub3", subject, false},
		"mcp.auth.audience":          {"aud2", "aud2", str(func(e *Event) string { return e.TokenAudience }), false},
		"mcp.auth.expires":           {int64(1893456000), "1893456000", expires, false},
		"mcp.auth.scopes":            {[]string{"s:a", "s:b"}, "s:a s:b", scopes, false},
		"enduser.scope":              {"read write", "read write", scopes, false},
	}

	seen := map[string]bool{}
	for _, row := range attributeTable {
		if seen[row.Key] {
			t.Errorf("attribute %q twice in the table", row.Key)
		}
		seen[row.Key] = true
		c, ok := cases[row.Key]
		if !ok {
			t.Errorf("no test case for table row %q", row.Key)
			continue
		}
		t.Run(row.Key, func(t *testing.T) {
			put := func(m pcommon.Map) {
				switch v := c.val.(type) {
				case string:
					m.PutStr(row.Key, v)
				case int64:
					m.PutInt(row.Key, v)
				case []string:
					s := m.PutEmptySlice(row.Key)
					for _, x := range v {
						s.AppendEmpty().SetStr(x)
					}
				}
			}
			var b Batch
			if c.log {
				l := newLog("")
				l.attrs.PutStr("mcp.tool.name", "x")
				put(l.attrs)
				b = FromLogs(l.ld, MapOptions{})
			} else {
				s := newSpan("span", ptrace.SpanKindServer)
				if row.Field != fMethod && row.Field != fOperation {
					s.attrs().PutStr("mcp.method.name", "tools/call")
				}
				put(s.attrs())
				b = FromTraces(s.td, MapOptions{})
			}
			if len(b.Events) == 0 {
				t.Fatalf("no event (dropped %v)", b.DropReasons)
			}
			if got := c.got(b); got != c.want {
				t.Errorf("%s=%v: got %q, want %q", row.Key, c.val, got, c.want)
			}
			if _, extra := b.Events[0].Attr(row.Key); extra {
				t.Errorf("%s also kept as an extra attribute", row.Key)
			}
		})
	}
	for k := range cases {
		if !seen[k] {
			t.Errorf("test case %q has no table row", k)
		}
	}
}

// TestAttributeRank: the semconv name wins over an alias whatever the order.
func TestAttributeRank(t *testing.T) {
	for _, order := range [][2]string{{"gen_ai.tool.name", "mcp.tool.name"}, {"mcp.tool.name", "gen_ai.tool.name"}} {
		s := newSpan("x", ptrace.SpanKindServer)
		s.attrs().PutStr("mcp.method.name", "tools/call")
		for _, k := range order {
			if k == "gen_ai.tool.name" {
				s.attrs().PutStr(k, "standard")
			} else {
				s.attrs().PutStr(k, "alias")
			}
		}
		eq(t, "tool name with order "+order[0], s.one(t, MapOptions{}).ToolName, "standard")
	}
}

// TestAttributeTableDocumented keeps docs/event.md in step with the table.
func TestAttributeTableDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/event.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range attributeTable {
		if !strings.Contains(string(doc), "| `"+row.Key+"` |") {
			t.Errorf("docs/event.md does not document %s", row.Key)
		}
	}
}

// TestLookupAlias: every row is found by its key, and nothing else is (the
// hash only picks the candidate; the key comparison decides).
func TestLookupAlias(t *testing.T) {
	for i := range attributeTable {
		if a := lookupAlias(attributeTable[i].Key); a != &attributeTable[i] {
			t.Errorf("%s: found %v", attributeTable[i].Key, a)
		}
	}
	for _, k := range []string{"", "u", "user.i", "user.idx", "mcp.session-id", "MCP.METHOD.NAME", "traceloop.span.kind", "mcp.method.name ",
		"gen_ai.tool.call.argumentX", "gen_ai.tool.call.xrguments", "mcpwatch.tool_annotationz", "enduser.scopE"} {
		if a := lookupAlias(k); a != nil {
			t.Errorf("%q: found %v", k, a.Key)
		}
	}
}
