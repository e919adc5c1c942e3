// Package profile learns what each agent (and tenant) does with its MCP
// tools — which servers and tools it calls and the shape of their
// arguments (internal/profile/shape) — from stored events, and exports
// that as gateway policies (docs/profiles.md).
package profile

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/profile/shape"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Profile is what an agent — or every agent of a tenant — did with its
// tools in a time range: per server and tool, the shape terms of the
// arguments (shape.Of). It is learned in batch from stored events and never
// written back: the hot path keeps its own per-agent copy (the rule's
// new_term baselines), so a tenant-wide profile needs no shared state.
type Profile struct {
	Tenant    string    `json:"tenant"`
	Agent     string    `json:"agent,omitempty"` // "" = tenant-wide
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Truncated bool      `json:"truncated,omitempty"` // MaxRows cut the learning
	Agents    []string  `json:"agents"`
	Servers   []Server  `json:"servers"`
}

// Server is one server of a profile.
type Server struct {
	Name  string `json:"name"`
	Tools []Tool `json:"tools"`
}

// Tool is one tool of a server with the agents that called it and the
// shape terms of its arguments.
type Tool struct {
	Name   string    `json:"name"`
	Calls  uint64    `json:"calls"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Agents []string  `json:"agents"`
	Terms  []string  `json:"terms"`
}

// ToolCallSource reads distinct stored tool calls (*store.Store).
type ToolCallSource interface {
	ToolCalls(ctx context.Context, q store.ToolCallsQuery, fn func(store.ToolCall) error) (bool, error)
}

// Query selects what to learn from.
type Query struct {
	Tenant string // required
	Agent  string // "" = the whole tenant
	From   time.Time
	To     time.Time
	// MaxRows bounds the distinct calls read (store.ToolCallsQuery). Default 1,000,000.
	MaxRows int
}

// Learn builds the profile of q from stored events.
func Learn(ctx context.Context, src ToolCallSource, q Query) (*Profile, error) {
	if q.Tenant == "" {
		return nil, fmt.Errorf("cannot learn a profile: tenant is required")
	}
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("cannot learn a profile: from %s is not before to %s", q.From, q.To)
	}
	type acc struct {
		tool   Tool
		agents map[string]bool
		terms  map[string]bool
	}
	tools := map[[2]string]*acc{}
	agents := map[string]bool{}
	shapes := map[string][]string{} // the same arguments recur across agents and tools
	trunc, err := src.ToolCalls(ctx, store.ToolCallsQuery{Tenant: q.Tenant, Agent: q.Agent, From: q.From, To: q.To, MaxRows: q.MaxRows},
		func(c store.ToolCall) error {
			if c.Server == "" || c.Tool == "" {
				return nil
			}
			k := [2]string{c.Server, c.Tool}
			a := tools[k]
			if a == nil {
				a = &acc{tool: Tool{Name: c.Tool, First: c.First, Last: c.Last}, agents: map[string]bool{}, terms: map[string]bool{}}
				tools[k] = a
			}
			a.tool.Calls += c.Calls
			if c.First.Before(a.tool.First) {
				a.tool.First = c.First
			}
			if c.Last.After(a.tool.Last) {
				a.tool.Last = c.Last
			}
			a.agents[c.Agent], agents[c.Agent] = true, true
			sh, ok := shapes[c.Arguments]
			if !ok {
				sh = shape.Of(c.Arguments)
				if len(shapes) < 100_000 {
					shapes[c.Arguments] = sh
				}
			}
			for _, t := range sh {
				a.terms[t] = true
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("cannot learn the profile of %s: %w", q.Tenant, err)
	}
	p := &Profile{Tenant: q.Tenant, Agent: q.Agent, From: q.From.UTC(), To: q.To.UTC(), Truncated: trunc, Agents: keys(agents)}
	byServer := map[string]*Server{}
	for k, a := range tools {
		s := byServer[k[0]]
		if s == nil {
			s = &Server{Name: k[0]}
			byServer[k[0]] = s
		}
		a.tool.Agents, a.tool.Terms = keys(a.agents), keys(a.terms)
		s.Tools = append(s.Tools, a.tool)
	}
	for _, s := range byServer {
		sort.Slice(s.Tools, func(i, j int) bool { return s.Tools[i].Name < s.Tools[j].Name })
		p.Servers = append(p.Servers, *s)
	}
	sort.Slice(p.Servers, func(i, j int) bool { return p.Servers[i].Name < p.Servers[j].Name })
	return p, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Server returns the named server of the profile, or nil.
func (p *Profile) Server(name string) *Server {
	for i := range p.Servers {
		if p.Servers[i].Name == name {
			return &p.Servers[i]
		}
	}
	return nil
}

// Roots and Hosts are the path roots and URL hosts of a tool's terms.
func (t Tool) Roots() []string { return withPrefix(t.Terms, shape.TermRoot) }

// Hosts are the URL hosts of a tool's terms.
func (t Tool) Hosts() []string { return withPrefix(t.Terms, shape.TermHost) }

func withPrefix(terms []string, prefix string) []string {
	var out []string
	for _, t := range terms {
		if strings.HasPrefix(t, prefix) {
			out = append(out, strings.TrimPrefix(t, prefix))
		}
	}
	return out
}
