package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Formats of Export.
const (
	FormatAgentgateway = "agentgateway" // mcpAuthorization CEL rules (agentgateway route policy)
	FormatToolHive     = "toolhive"     // ToolHive permission profile (JSON), one server
	FormatJSON         = "json"         // the learned profile itself
)

// ExportOptions tune Export.
type ExportOptions struct {
	// Identity is the agentgateway CEL expression that names the calling
	// agent (e.g. jwt.sub, apiKey.agent); each rule then also requires it
	// to equal the agent id. Default "": no binding, the rules hold for
	// whoever reaches the route.
	Identity string
	// Server picks the server a ToolHive profile is for (ToolHive profiles
	// apply to one MCP server's container). Required when the profile has
	// more than one server.
	Server string
}

var identityRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// Export writes p in format. Notes say what the format could not express
// (they belong on stderr, not in the policy).
func Export(p *Profile, format string, o ExportOptions) (out []byte, notes []string, err error) {
	if len(p.Servers) == 0 {
		return nil, nil, fmt.Errorf("cannot export: no tool calls learned for %s between %s and %s", p.subject(), p.From.Format("2006-01-02"), p.To.Format("2006-01-02"))
	}
	switch format {
	case FormatAgentgateway:
		return agentgateway(p, o)
	case FormatToolHive:
		return toolHive(p, o)
	case FormatJSON:
		b, err := json.MarshalIndent(p, "", "  ")
		return append(b, '\n'), nil, err
	}
	return nil, nil, fmt.Errorf("cannot export: format %q must be one of %s, %s, %s", format, FormatAgentgateway, FormatToolHive, FormatJSON)
}

func (p *Profile) subject() string {
	if p.Agent != "" {
		return "agent " + p.Agent + " of tenant " + p.Tenant
	}
	return "tenant " + p.Tenant
}

// celString is a CEL string literal (Go's quoting is a subset of CEL's).
func celString(s string) string { return strconv.Quote(s) }

func celList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = celString(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// agentgateway writes an mcpAuthorization policy: one allow rule per
// server (per agent and server with Identity). Request-time CEL in
// agentgateway sees the tool's target and name, not its arguments, so
// argument shapes are not part of it (see the ToolHive profile).
func agentgateway(p *Profile, o ExportOptions) ([]byte, []string, error) {
	if o.Identity != "" && !identityRE.MatchString(o.Identity) {
		return nil, nil, fmt.Errorf("cannot export: identity %q must be a CEL field path such as jwt.sub", o.Identity)
	}
	var rules []string
	rule := func(agent, server string, tools []string) {
		r := "mcp.tool.target == " + celString(server) + " && mcp.tool.name in " + celList(tools)
		if o.Identity != "" {
			r = o.Identity + " == " + celString(agent) + " && " + r
		}
		rules = append(rules, r)
	}
	if o.Identity == "" {
		for _, s := range p.Servers {
			var names []string
			for _, t := range s.Tools {
				names = append(names, t.Name)
			}
			rule("", s.Name, names)
		}
	} else {
		for _, a := range p.Agents {
			for _, s := range p.Servers {
				var names []string
				for _, t := range s.Tools {
					if contains(t.Agents, a) {
						names = append(names, t.Name)
					}
				}
				if len(names) > 0 {
					rule(a, s.Name, names)
				}
			}
		}
	}
	doc := map[string]any{"mcpAuthorization": map[string]any{"rules": rules}}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# mcpwatch learned profile of %s, %s to %s.\n", p.subject(), p.From.Format("2006-01-02"), p.To.Format("2006-01-02"))
	b.WriteString("# agentgateway route policy: put mcpAuthorization under binds[].listeners[].routes[].policies.\n")
	b.WriteString("# Targets are the MCP server names mcpwatch saw; rename them if your gateway's target names differ.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, nil, fmt.Errorf("cannot write agentgateway policy: %w", err)
	}
	var notes []string
	if p.Truncated {
		notes = append(notes, "the profile was learned from a truncated set of calls (raise --max-rows)")
	}
	return b.Bytes(), notes, nil
}

func contains(xs []string, x string) bool {
	i := sort.SearchStrings(xs, x)
	return i < len(xs) && xs[i] == x
}

// toolHivePermissions is ToolHive's permission profile (read, write,
// network.outbound), as its registry schema defines it.
type toolHivePermissions struct {
	Read    []string        `json:"read,omitempty"`
	Write   []string        `json:"write,omitempty"`
	Network toolHiveNetwork `json:"network"`
}

type toolHiveNetwork struct {
	Outbound toolHiveOutbound `json:"outbound"`
}

type toolHiveOutbound struct {
	InsecureAllowAll bool     `json:"insecure_allow_all"`
	AllowHost        []string `json:"allow_host,omitempty"`
}

// writeTool guesses from a tool's name that it writes where its paths point.
var writeTool = regexp.MustCompile(`(?i)(write|edit|create|move|rename|delete|remove|mkdir|put|upload|save|append|patch|commit|checkout)`)

var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// toolHive writes the permission profile of one server: the path roots
// its tools used (write for tools whose name says they write, read for
// the others; ToolHive's write implies read) and the hosts of the URLs
// they were given. Roots ToolHive cannot mount (home "~", "..", Windows
// drives, "/" itself) and hosts that are not host names become notes.
func toolHive(p *Profile, o ExportOptions) ([]byte, []string, error) {
	name := o.Server
	if name == "" {
		if len(p.Servers) > 1 {
			var names []string
			for _, s := range p.Servers {
				names = append(names, s.Name)
			}
			return nil, nil, fmt.Errorf("cannot export a ToolHive profile: it is per server; choose one with --server (%s)", strings.Join(names, ", "))
		}
		name = p.Servers[0].Name
	}
	s := p.Server(name)
	if s == nil {
		return nil, nil, fmt.Errorf("cannot export a ToolHive profile: server %q has no calls in the profile of %s", name, p.subject())
	}
	read, write, hosts := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var notes []string
	for _, t := range s.Tools {
		for _, r := range t.Roots() {
			if !strings.HasPrefix(r, "/") || r == "/" {
				notes = append(notes, fmt.Sprintf("%s/%s used paths under %q, which a ToolHive profile cannot express", s.Name, t.Name, r))
				continue
			}
			if writeTool.MatchString(t.Name) {
				write[r] = true
			} else {
				read[r] = true
			}
		}
		for _, h := range t.Hosts() {
			if !hostRE.MatchString(h) {
				notes = append(notes, fmt.Sprintf("%s/%s reached %q, which is not a host name ToolHive accepts", s.Name, t.Name, h))
				continue
			}
			hosts[h] = true
		}
	}
	for r := range write {
		delete(read, r) // write implies read
	}
	out := toolHivePermissions{Read: keys(read), Write: keys(write), Network: toolHiveNetwork{Outbound: toolHiveOutbound{AllowHost: keys(hosts)}}}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot write ToolHive profile: %w", err)
	}
	sort.Strings(notes)
	if p.Truncated {
		notes = append(notes, "the profile was learned from a truncated set of calls (raise --max-rows)")
	}
	return append(b, '\n'), notes, nil
}
