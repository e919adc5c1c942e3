package profile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/profile"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func call(i int, agent, server, tool, args string, outcome event.Outcome) event.Event {
	ts := t0.Add(time.Duration(i) * time.Hour)
	return event.Event{
		EventID: "e" + strings.Repeat("0", 4) + string(rune('a'+i%26)) + agent + tool + ts.Format("150405") + string(rune('A'+i/26)),
		Tenant:  "acme", Kind: event.KindMessage, Time: ts, Source: event.SourceSpan, Observer: event.ObserverClient,
		Method: "tools/call", AgentID: agent, ServerName: server, ToolName: tool, Arguments: args, Outcome: outcome,
	}
}

// learnTwoAgents stores the calls of two agents (and one other tenant's) in
// a real ClickHouse and returns the store.
func learnTwoAgents(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch := testbed.ClickHouse(t)
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	evs := []event.Event{
		call(0, "coder", "filesystem", "read_file", `{"path":"/srv/app/main.go"}`, event.OutcomeOK),
		call(1, "coder", "filesystem", "read_file", `{"path":"/srv/app/go.mod"}`, event.OutcomeOK),
		call(2, "coder", "filesystem", "write_file", `{"path":"/work/out/report.md","content":"x"}`, event.OutcomeOK),
		call(3, "coder", "filesystem", "read_file", `{"path":"~/notes.txt"}`, event.OutcomeOK),
		call(4, "coder", "fetch", "fetch_url", `{"url":"https://pkg.go.dev/net/http"}`, event.OutcomeOK),
		call(5, "coder", "fetch", "fetch_url", `{"url":"http://[::1]:8080/"}`, event.OutcomeOK),
		call(6, "support", "tickets", "get_ticket", `{"id":"T-1"}`, event.OutcomeOK),
		call(7, "support", "email", "send_email", `{"to":"a@example.com","subject":"s","body":"b"}`, event.OutcomeOK),
		// Denied by the gateway: not part of what the agent does.
		call(8, "support", "tickets", "export_tickets", `{"query":"*"}`, event.OutcomeDenied),
	}
	other := call(9, "coder", "shell", "run_command", `{"command":"ls"}`, event.OutcomeOK)
	other.Tenant = "globex"
	evs = append(evs, other)
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return st
}

func learn(t *testing.T, st *store.Store, agent string) *profile.Profile {
	t.Helper()
	p, err := profile.Learn(context.Background(), st, profile.Query{Tenant: "acme", Agent: agent, From: t0.Add(-time.Hour), To: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func toolNames(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Servers {
		for _, tl := range s.Tools {
			out = append(out, s.Name+"/"+tl.Name)
		}
	}
	return out
}

// TestLearnFromClickHouse learns per-agent and tenant profiles from stored
// events: each agent's own servers, tools and shapes; denied calls and
// other tenants left out.
func TestLearnFromClickHouse(t *testing.T) {
	st := learnTwoAgents(t)
	coder := learn(t, st, "coder")
	if got, want := toolNames(coder), []string{"fetch/fetch_url", "filesystem/read_file", "filesystem/write_file"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("coder tools = %v, want %v", got, want)
	}
	rf := coder.Server("filesystem").Tools[0]
	if want := []string{"key:path=string", "root:/srv", "root:~"}; !reflect.DeepEqual(rf.Terms, want) || rf.Calls != 3 {
		t.Fatalf("read_file = %+v, want terms %v and 3 calls", rf, want)
	}
	tenant := learn(t, st, "")
	if got, want := toolNames(tenant), []string{"email/send_email", "fetch/fetch_url", "filesystem/read_file", "filesystem/write_file", "tickets/get_ticket"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tenant tools = %v, want %v (no denied call, no other tenant)", got, want)
	}
	if !reflect.DeepEqual(tenant.Agents, []string{"coder", "support"}) {
		t.Fatalf("tenant agents = %v", tenant.Agents)
	}
}

// agentgatewayEnv declares the CEL variables agentgateway documents for
// request-time policies (schema/cel.md): mcp, jwt, apiKey, request, source.
func agentgatewayEnv(t *testing.T) *cel.Env {
	t.Helper()
	env, err := cel.NewEnv(
		cel.Variable("mcp", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("jwt", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("apiKey", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("source", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// rulesOf returns binds[0].listeners[0].routes[0].policies.mcpAuthorization of a config.
func policiesOf(t *testing.T, cfg map[string]any) map[string]any {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("config does not have the example's structure: %v", r)
		}
	}()
	route := cfg["binds"].([]any)[0].(map[string]any)["listeners"].([]any)[0].(map[string]any)["routes"].([]any)[0].(map[string]any)
	return route["policies"].(map[string]any)
}

func TestExportAgentgatewayMatchesTheExample(t *testing.T) {
	st := learnTwoAgents(t)
	exampleText, err := os.ReadFile("testdata/agentgateway/authorization-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var example map[string]any
	if err := yaml.Unmarshal(exampleText, &example); err != nil {
		t.Fatal(err)
	}
	env := agentgatewayEnv(t)
	compileAll := func(rules []any) {
		t.Helper()
		for _, r := range rules {
			s, ok := r.(string)
			if !ok {
				t.Fatalf("rule %v is not a string", r)
			}
			a, iss := env.Compile(s)
			if iss != nil && iss.Err() != nil {
				t.Fatalf("rule %q does not compile: %v", s, iss.Err())
			}
			if a.OutputType() != cel.BoolType {
				t.Fatalf("rule %q is %s, not bool", s, a.OutputType())
			}
		}
	}
	// The environment is faithful enough to compile agentgateway's own rules.
	exampleAuthz := policiesOf(t, example)["mcpAuthorization"].(map[string]any)
	compileAll(exampleAuthz["rules"].([]any))

	for name, c := range map[string]struct {
		agent, identity string
		want            []string
	}{
		"agent": {agent: "coder", want: []string{
			`mcp.tool.target == "fetch" && mcp.tool.name in ["fetch_url"]`,
			`mcp.tool.target == "filesystem" && mcp.tool.name in ["read_file", "write_file"]`}},
		"tenant bound to jwt.sub": {identity: "jwt.sub", want: []string{
			`jwt.sub == "coder" && mcp.tool.target == "fetch" && mcp.tool.name in ["fetch_url"]`,
			`jwt.sub == "coder" && mcp.tool.target == "filesystem" && mcp.tool.name in ["read_file", "write_file"]`,
			`jwt.sub == "support" && mcp.tool.target == "email" && mcp.tool.name in ["send_email"]`,
			`jwt.sub == "support" && mcp.tool.target == "tickets" && mcp.tool.name in ["get_ticket"]`}},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := profile.Export(learn(t, st, c.agent), profile.FormatAgentgateway, profile.ExportOptions{Identity: c.identity})
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(out, &doc); err != nil {
				t.Fatalf("output is not YAML: %v\n%s", err, out)
			}
			authz, ok := doc["mcpAuthorization"].(map[string]any)
			if !ok || len(doc) != 1 {
				t.Fatalf("output is not one mcpAuthorization policy:\n%s", out)
			}
			// Same keys as the example's policy.
			if len(authz) != len(exampleAuthz) || authz["rules"] == nil {
				t.Fatalf("policy keys differ from the example's: %v vs %v", authz, exampleAuthz)
			}
			rules := authz["rules"].([]any)
			var got []string
			for _, r := range rules {
				got = append(got, r.(string))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("rules =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			compileAll(rules)
			// Spliced into the example's route, the config keeps its structure.
			var cfg map[string]any
			_ = yaml.Unmarshal(exampleText, &cfg)
			policiesOf(t, cfg)["mcpAuthorization"] = authz
			b, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := yaml.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(policiesOf(t, back)["mcpAuthorization"], authz) {
				t.Fatalf("spliced policy did not survive a round trip")
			}
		})
	}
	if _, _, err := profile.Export(learn(t, st, "coder"), profile.FormatAgentgateway, profile.ExportOptions{Identity: `jwt.sub == "x" || true`}); err == nil {
		t.Fatal("an identity that is not a field path was accepted")
	}
}

func toolHiveSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/toolhive/permissions.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("permissions.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("permissions.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	return sch.Validate(v)
}

func TestExportToolHiveValidatesAgainstItsSchema(t *testing.T) {
	st := learnTwoAgents(t)
	sch := toolHiveSchema(t)
	// The schema is strict enough to reject what ToolHive would not take.
	for _, bad := range []string{`{"read":["relative/dir"]}`, `{"network":{"outbound":{"allow_host":["::1"]}}}`, `{"mounts":[]}`} {
		if validate(t, sch, []byte(bad)) == nil {
			t.Fatalf("schema accepted %s", bad)
		}
	}
	coder := learn(t, st, "coder")
	if _, _, err := profile.Export(coder, profile.FormatToolHive, profile.ExportOptions{}); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Fatalf("two servers without --server: err = %v", err)
	}
	fs, notes, err := profile.Export(coder, profile.FormatToolHive, profile.ExportOptions{Server: "filesystem"})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, sch, fs); err != nil {
		t.Fatalf("filesystem profile does not validate: %v\n%s", err, fs)
	}
	var got map[string]any
	_ = json.Unmarshal(fs, &got)
	if !reflect.DeepEqual(got["read"], []any{"/srv"}) || !reflect.DeepEqual(got["write"], []any{"/work"}) {
		t.Fatalf("filesystem profile = %s", fs)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `"~"`) {
		t.Fatalf("notes = %q, want one about ~", notes)
	}
	fetch, notes, err := profile.Export(coder, profile.FormatToolHive, profile.ExportOptions{Server: "fetch"})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(t, sch, fetch); err != nil {
		t.Fatalf("fetch profile does not validate: %v\n%s", err, fetch)
	}
	if !strings.Contains(string(fetch), `"allow_host": [`+"\n"+`        "pkg.go.dev"`) || len(notes) != 1 || !strings.Contains(notes[0], "::1") {
		t.Fatalf("fetch profile = %s, notes %q", fetch, notes)
	}
	// Tenant-wide, one server each.
	tenant := learn(t, st, "")
	for _, s := range []string{"email", "tickets", "filesystem", "fetch"} {
		b, _, err := profile.Export(tenant, profile.FormatToolHive, profile.ExportOptions{Server: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, sch, b); err != nil {
			t.Fatalf("%s: %v\n%s", s, err, b)
		}
	}
}
