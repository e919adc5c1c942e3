package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// ProtocolVersion is the MCP revision the generated clients speak.
const ProtocolVersion = "2025-06-18"

// Tool is one tool a server advertises.
type Tool struct {
	Name        string
	Description string
	InputSchema string // JSON
}

// Server is one MCP server as the generator models it.
type Server struct {
	Name      string
	Version   string
	Address   string // "" for stdio servers
	Port      uint16
	Transport string // "pipe" (stdio) or "tcp" (streamable HTTP)
	Tools     []Tool
}

func (s *Server) tool(name string) Tool {
	for _, t := range s.Tools {
		if t.Name == name {
			return t
		}
	}
	panic("scenario: server " + s.Name + " has no tool " + name)
}

func schema(props ...string) string {
	p := map[string]any{}
	for _, name := range props {
		p[name] = map[string]any{"type": "string"}
	}
	b, _ := json.Marshal(map[string]any{"type": "object", "properties": p, "required": props[:1]})
	return string(b)
}

func tool(name, desc string, props ...string) Tool {
	return Tool{Name: name, Description: desc, InputSchema: schema(props...)}
}

// The servers of the three benign profiles.
func codingServers() []*Server {
	return []*Server{
		{Name: "filesystem", Version: "1.4.2", Transport: "pipe", Tools: []Tool{
			tool("read_file", "Read the complete contents of a file from the file system.", "path"),
			tool("write_file", "Create a new file or overwrite an existing file with new content. IMPORTANT: use with caution, it overwrites without warning. Only works within allowed directories.", "path", "content"),
			tool("edit_file", "Make line-based edits to a text file. Returns a git-style diff.", "path", "edits"),
			tool("list_directory", "List the files and directories in a given path.", "path"),
			tool("search_files", "Recursively search for files and directories matching a pattern.", "path", "pattern"),
			tool("move_file", "Move or rename files and directories.", "source", "destination"),
		}},
		{Name: "git", Version: "0.6.2", Transport: "pipe", Tools: []Tool{
			tool("git_status", "Shows the working tree status.", "repo_path"),
			tool("git_diff", "Shows differences between branches or commits.", "repo_path", "target"),
			tool("git_log", "Shows the commit logs.", "repo_path", "max_count"),
			tool("git_commit", "Records changes to the repository.", "repo_path", "message"),
			tool("git_checkout", "Switches branches.", "repo_path", "branch_name"),
		}},
		{Name: "shell", Version: "2.1.0", Transport: "pipe", Tools: []Tool{
			tool("run_command", "Run a shell command in the project directory and return its output.", "command", "cwd"),
		}},
		{Name: "fetch", Version: "0.3.1", Transport: "pipe", Tools: []Tool{
			tool("fetch_url", "Fetches a URL from the internet and extracts its contents as markdown.", "url"),
			tool("http_request", "Send an HTTP request (any method) and return the response.", "url", "method", "body"),
		}},
		{Name: "github", Version: "1.2.0", Address: "api.githubcopilot.example", Port: 443, Transport: "tcp", Tools: []Tool{
			tool("list_issues", "List issues in a GitHub repository.", "owner", "repo", "state"),
			tool("create_pull_request", "Create a new pull request in a GitHub repository.", "owner", "repo", "title", "body", "head", "base"),
			tool("delete_repository", "Delete a GitHub repository. Irreversible.", "owner", "repo"),
		}},
	}
}

func dataServers() []*Server {
	return []*Server{
		{Name: "postgres", Version: "0.9.0", Address: "mcp-postgres.data.svc", Port: 8080, Transport: "tcp", Tools: []Tool{
			tool("query", "Run a read-only SQL query against the analytics warehouse.", "sql"),
			tool("list_tables", "List the tables of a schema.", "schema"),
			tool("describe_table", "Describe the columns of a table.", "table"),
			tool("export_table", "Export a whole table to object storage.", "table", "destination"),
		}},
		{Name: "files", Version: "1.0.3", Transport: "pipe", Tools: []Tool{
			tool("read_csv", "Read a CSV file from the shared workspace.", "path"),
			tool("write_csv", "Write rows to a CSV file in the shared workspace.", "path", "rows"),
		}},
		{Name: "charts", Version: "0.2.0", Transport: "pipe", Tools: []Tool{
			tool("create_chart", "Render a chart 📊 from a CSV file and return its URL (made by 🧑‍💻 the data team).", "type", "data_ref", "title"),
		}},
	}
}

func supportServers() []*Server {
	return []*Server{
		{Name: "tickets", Version: "3.2.1", Address: "mcp.acme.example", Port: 443, Transport: "tcp", Tools: []Tool{
			tool("get_ticket", "Fetch a support ticket with its conversation.", "id"),
			tool("search_tickets", "Search support tickets.", "query"),
			tool("update_ticket", "Update a ticket's status and add an internal note.", "id", "status", "note"),
			tool("export_tickets", "Export tickets matching a query as CSV.", "query", "format"),
		}},
		{Name: "kb", Version: "1.1.0", Address: "mcp.acme.example", Port: 443, Transport: "tcp", Tools: []Tool{
			tool("search_kb", "Search the knowledge base.", "query"),
			tool("get_article", "Fetch a knowledge-base article.", "id"),
		}},
		{Name: "email", Version: "2.0.4", Address: "mcp.acme.example", Port: 443, Transport: "tcp", Tools: []Tool{
			tool("send_email", "Send an email to a customer from the support mailbox.", "to", "subject", "body"),
		}},
	}
}

// agent is one deployed AI agent: identity, client, servers.
type agent struct {
	profile     string // coding | data | support
	tenant      string
	id, name    string
	service     string // service.name of the host application
	client      string
	clientVer   string
	users       []string
	servers     []*Server
	gateway     bool   // calls go through an MCP gateway (identity, token, origin)
	addrPrefix  string // client address prefix (gateway)
	userAgent   string
	origin      string
	sessionless bool // MCP 2026 revision: no mcp.session.id, correlation by conversation
}

// gen builds events with a deterministic random source.
type gen struct {
	r   *rand.Rand
	out *Corpus
}

func newGen(seed int64, stream uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(uint64(seed), stream)), out: &Corpus{}}
}

func (g *gen) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return hex.EncodeToString(b)
}

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) label(l *Label) *Label {
	g.out.Cases = append(g.out.Cases, l)
	return l
}

// session is one agent session: a conversation with one user, over which
// the agent calls tools on its servers.
type session struct {
	g        *gen
	a        *agent
	label    *Label
	user     string
	sid      string // mcp.session.id, "" for sessionless clients
	conv     string
	trace    string
	turnSpan string
	clientIP string
	t        time.Time
	reqID    int
	// gateway identity
	tokenSub string
	tokenAud map[string]string // server → audience
	scopes   []string
	origin   string
	ua       string
	// overrides for attacks
	clientName, clientVer string
	versions              map[string]string // server → version override
	extra                 []*Server         // servers only this session uses
	upgraded              map[string][]Tool // server → tools after a planned upgrade
}

func (g *gen) session(a *agent, l *Label, t time.Time) *session {
	s := &session{g: g, a: a, label: l, t: t, user: g.pick(a.users), conv: "conv-" + g.hex(8)}
	if !a.sessionless {
		s.sid = "mcp-sess-" + g.hex(12)
	}
	if a.gateway {
		s.clientIP = fmt.Sprintf("%s.%d", a.addrPrefix, 10+g.r.IntN(200))
		s.tokenSub = s.user
		s.tokenAud = map[string]string{}
		for _, srv := range a.servers {
			s.tokenAud[srv.Name] = "https://mcp.acme.example/" + srv.Name
		}
		s.scopes = []string{"tickets:read", "tickets:write", "kb:read", "email:send"}
		s.origin = a.origin
		s.ua = a.userAgent
	}
	s.clientName, s.clientVer = a.client, a.clientVer
	s.applyUpgrades()
	s.newTurn()
	return s
}

func (s *session) newTurn() {
	s.trace = s.g.hex(16)
	s.turnSpan = s.g.hex(8)
}

// advance moves the session clock by a random think time in [lo, hi).
func (s *session) advance(lo, hi time.Duration) {
	s.t = s.t.Add(lo + time.Duration(s.g.r.Int64N(int64(hi-lo)+1)))
}

func (s *session) server(name string) *Server {
	for _, srv := range s.extra {
		if srv.Name == name {
			return srv
		}
	}
	for _, srv := range s.a.servers {
		if srv.Name == name {
			return srv
		}
	}
	panic("scenario: agent " + s.a.id + " has no server " + name)
}

// base returns an event with the session's context filled in.
func (s *session) base(method string, srv *Server) event.Event {
	s.reqID++
	e := event.Event{
		Tenant:          s.a.tenant,
		Kind:            event.KindMessage,
		Time:            s.t,
		DurationNs:      uint64(2+s.g.r.IntN(400)) * uint64(time.Millisecond),
		Source:          event.SourceSpan,
		Observer:        event.ObserverClient,
		TraceID:         s.trace,
		SpanID:          s.g.hex(8),
		ParentSpanID:    s.turnSpan,
		ServiceName:     s.a.service,
		Method:          method,
		ProtocolVersion: ProtocolVersion,
		SessionID:       s.sid,
		RequestID:       fmt.Sprint(s.reqID),
		ConversationID:  s.conv,
		AgentID:         s.a.id,
		AgentName:       s.a.name,
		UserID:          s.user,
		ClientName:      s.clientName,
		ClientVersion:   s.clientVer,
		Outcome:         event.OutcomeOK,
	}
	if srv != nil {
		e.ServerName = srv.Name
		e.ServerVersion = srv.Version
		if v, ok := s.versions[srv.Name]; ok {
			e.ServerVersion = v
		}
		e.ServerAddress = srv.Address
		e.ServerPort = srv.Port
		e.Transport = srv.Transport
	}
	if s.a.gateway {
		e.Observer = event.ObserverGateway
		e.ClientAddress = s.clientIP
		e.UserAgent = s.ua
		e.Origin = s.origin
		e.TokenSubject = s.tokenSub
		if srv != nil {
			e.TokenAudience = s.tokenAud[srv.Name]
		}
		if s.tokenSub != "" {
			e.TokenExpires = s.t.Truncate(time.Second).Add(55 * time.Minute)
			e.Scopes = append([]string(nil), s.scopes...)
		}
	}
	e.EventID = e.TraceID + e.SpanID
	e.CallID = event.CallIDOf(&e)
	if e.SessionID != "" {
		e.SessionKey = e.SessionID
	} else {
		e.SessionKey = e.ConversationID
	}
	return e
}

func (s *session) emit(e event.Event) *event.Event {
	s.g.out.Events = append(s.g.out.Events, Labeled{Event: e, Label: s.label})
	return &s.g.out.Events[len(s.g.out.Events)-1].Event
}

func jsonString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// call records a tools/call of tool on server with arguments and result.
func (s *session) call(server, toolName string, args, result any) *event.Event {
	srv := s.server(server)
	e := s.base("tools/call", srv)
	e.ToolName = toolName
	e.ToolCallID = "call_" + s.g.hex(6)
	e.Arguments = jsonString(args)
	e.ArgumentsSize = uint32(len(e.Arguments))
	if result != nil {
		e.Result = jsonString(map[string]any{"content": []any{map[string]any{"type": "text", "text": jsonString(result)}}})
		e.ResultSize = uint32(len(e.Result))
	}
	s.advance(2*time.Second, 40*time.Second)
	return s.emit(e)
}

// method records a non-tool MCP message (ping, resources/read, sampling...).
func (s *session) method(method, server string, args, result any) *event.Event {
	var srv *Server
	if server != "" {
		srv = s.server(server)
	}
	e := s.base(method, srv)
	e.Arguments = jsonString(args)
	e.ArgumentsSize = uint32(len(e.Arguments))
	e.Result = jsonString(result)
	e.ResultSize = uint32(len(e.Result))
	s.advance(time.Second, 10*time.Second)
	return s.emit(e)
}

// connect records initialize and tools/list (with every tool definition)
// for the given servers, as a client does when a session starts.
func (s *session) connect(servers ...string) {
	for _, name := range servers {
		srv := s.server(name)
		ini := s.base("initialize", srv)
		ini.DurationNs = uint64(5+s.g.r.IntN(50)) * uint64(time.Millisecond)
		s.emit(ini)
		s.t = s.t.Add(50 * time.Millisecond)
		tools := srv.Tools
		if up, ok := s.upgraded[srv.Name]; ok {
			tools = up
		}
		s.list(srv, tools)
	}
	s.advance(time.Second, 5*time.Second)
}

// Upgrades are planned releases in the benign traffic: from At after
// BaseTime, sessions see the server at Version with its tools changed by
// Change. A real upgrade changes tool text together with the version.
var Upgrades = []struct {
	At      time.Duration
	Server  string
	Version string
	Change  func([]Tool) []Tool
}{
	{5 * 24 * time.Hour, "filesystem", "1.5.0", func(ts []Tool) []Tool {
		out := append([]Tool(nil), ts...)
		for i := range out {
			if out[i].Name == "read_file" {
				out[i].Description += " Supports reading a line range with 'head' and 'tail'."
				out[i].InputSchema = schema("path", "head", "tail")
			}
		}
		return out
	}},
	{6 * 24 * time.Hour, "postgres", "0.10.0", func(ts []Tool) []Tool {
		out := append([]Tool(nil), ts...)
		for i := range out {
			if out[i].Name == "query" {
				out[i].Description = "Run a read-only SQL query against the analytics warehouse (results capped at 10,000 rows)."
			}
		}
		return out
	}},
}

// applyUpgrades sets the versions and tool lists of the upgrades due at the
// session's start.
func (s *session) applyUpgrades() {
	for _, u := range Upgrades {
		if s.t.Before(BaseTime.Add(u.At)) {
			continue
		}
		for _, srv := range s.a.servers {
			if srv.Name != u.Server {
				continue
			}
			if s.versions == nil {
				s.versions = map[string]string{}
			}
			if s.upgraded == nil {
				s.upgraded = map[string][]Tool{}
			}
			s.versions[u.Server] = u.Version
			s.upgraded[u.Server] = u.Change(srv.Tools)
		}
	}
}

// list records a tools/list message and one tool_definition event per tool.
func (s *session) list(srv *Server, tools []Tool) {
	l := s.base("tools/list", srv)
	msg := s.emit(l)
	for _, t := range tools {
		// The fields event.FromTraces copies from the tools/list span.
		d := event.Event{
			EventID: msg.EventID + "-" + shortHash(t.Name), Tenant: msg.Tenant, Kind: event.KindToolDefinition,
			Time: msg.Time, Source: msg.Source, Observer: msg.Observer,
			TraceID: msg.TraceID, SpanID: msg.SpanID, ParentSpanID: msg.ParentSpanID,
			ServiceName: msg.ServiceName, ServiceInstance: msg.ServiceInstance, HostName: msg.HostName,
			Method: "tools/list", ProtocolVersion: msg.ProtocolVersion, Transport: msg.Transport,
			SessionID: msg.SessionID, RequestID: msg.RequestID, CallID: msg.CallID, ConversationID: msg.ConversationID, SessionKey: msg.SessionKey,
			AgentID: msg.AgentID, AgentName: msg.AgentName, UserID: msg.UserID,
			ClientName: msg.ClientName, ClientVersion: msg.ClientVersion, ClientAddress: msg.ClientAddress, UserAgent: msg.UserAgent,
			ServerName: msg.ServerName, ServerVersion: msg.ServerVersion, ServerAddress: msg.ServerAddress, ServerPort: msg.ServerPort,
			ToolName: t.Name, Outcome: event.OutcomeOK,
			ToolDescription: t.Description,
		}
		if t.InputSchema != "" {
			c, err := event.CanonicalJSON([]byte(t.InputSchema))
			if err != nil {
				panic(err)
			}
			d.ToolInputSchema = string(c)
		}
		d.ToolDefinitionHash = event.ToolDefinitionHash(t.Name, t.Description, d.ToolInputSchema, "")
		s.emit(d)
	}
	s.t = s.t.Add(100 * time.Millisecond)
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// setVersion makes the session see server at version (e.g. a swapped binary).
func (s *session) setVersion(server, version string) {
	if s.versions == nil {
		s.versions = map[string]string{}
	}
	s.versions[server] = version
}
