package profile_test

import (
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/profile"
)

// TestSecurityPolicyExportInjection: server and tool names come from
// telemetry, so a hostile sender chooses them. In an exported agentgateway
// policy they stay string literals: the YAML parses to the same rules, and
// each rule allows exactly the learned names, never another tool.
func TestSecurityPolicyExportInjection(t *testing.T) {
	hostile := []string{
		`x" || true || "`, `x") || mcp.tool.name != ("`, "line\nbreak", "tab\tand\\backslash", `# comment`,
		`- item`, `key: value`, `*alias`, `&anchor`, "\u2028sep", `'single'`, `{{template}}`, "\x00nul", `é` + "\u202e",
	}
	p := &profile.Profile{Tenant: "t", Agent: "a", From: t0, To: t0.Add(time.Hour), Agents: []string{"a", `b" || true || "`}}
	for _, h := range hostile {
		p.Servers = append(p.Servers, profile.Server{Name: h, Tools: []profile.Tool{{Name: h, Agents: []string{"a", `b" || true || "`}}}})
	}
	env := agentgatewayEnv(t)
	for _, identity := range []string{"", "jwt.sub"} {
		out, _, err := profile.Export(p, profile.FormatAgentgateway, profile.ExportOptions{Identity: identity})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Authz struct {
				Rules []string `yaml:"rules"`
			} `yaml:"mcpAuthorization"`
		}
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("policy is not YAML: %v\n%s", err, out)
		}
		want := len(hostile)
		if identity != "" {
			want *= 2 // per agent
		}
		if len(doc.Authz.Rules) != want {
			t.Fatalf("identity %q: %d rules, want %d:\n%s", identity, len(doc.Authz.Rules), want, out)
		}
		for i, r := range doc.Authz.Rules {
			a, iss := env.Compile(r)
			if iss != nil && iss.Err() != nil {
				t.Fatalf("rule %q does not compile: %v", r, iss.Err())
			}
			prg, err := env.Program(a)
			if err != nil {
				t.Fatal(err)
			}
			name := hostile[i%len(hostile)]
			agent := p.Agents[i/len(hostile)%2]
			allow := func(target, tool, sub string) bool {
				v, _, err := prg.Eval(map[string]any{
					"mcp": map[string]any{"tool": map[string]any{"target": target, "name": tool}},
					"jwt": map[string]any{"sub": sub},
				})
				if err != nil {
					t.Fatalf("rule %q: %v", r, err)
				}
				return v.Value() == true
			}
			if !allow(name, name, agent) {
				t.Errorf("rule %q does not allow its own tool %q", r, name)
			}
			if allow(name, "delete_everything", agent) || allow("other", name, agent) {
				t.Errorf("rule %q allows a tool it never learned", r)
			}
			if identity != "" && allow(name, name, "mallory") {
				t.Errorf("rule %q allows another caller", r)
			}
		}
	}
	if _, _, err := profile.Export(p, profile.FormatAgentgateway, profile.ExportOptions{Identity: "jwt.sub == jwt.sub || true"}); err == nil {
		t.Fatal("an identity expression was accepted as a field path")
	}
}
