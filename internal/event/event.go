// Package event defines mcpwatch's canonical audit event (docs/event.md), the
// mapping from OTLP traces and logs onto it, and its encoding as the Kafka
// value. It performs no I/O and imports nothing else of mcpwatch.
package event

import "time"

// Source says which OTLP signal an event came from.
type Source string

const (
	SourceSpan Source = "span"
	SourceLog  Source = "log"
)

// Observer says which side of the MCP conversation recorded the event.
type Observer string

const (
	ObserverClient  Observer = "client"
	ObserverServer  Observer = "server"
	ObserverGateway Observer = "gateway"
	ObserverUnknown Observer = "unknown"
)

// Outcome is the result of the MCP message as the observer saw it.
type Outcome string

const (
	OutcomeOK        Outcome = "ok"
	OutcomeError     Outcome = "error"      // protocol or transport error
	OutcomeToolError Outcome = "tool_error" // the tool ran and reported isError
	OutcomeDenied    Outcome = "denied"     // a gateway refused the call
)

// Kind distinguishes a tool call/message event from a tool definition
// (a tools/list result or an mcp.tools.snapshot record).
type Kind string

const (
	KindMessage        Kind = "message"
	KindToolDefinition Kind = "tool_definition"
)

// Event is one MCP message observed by one observer. Field names follow the
// ClickHouse columns of schema/ (snake_case in the `ch` tag) and the attribute
// names used on the Kafka topic (see codec.go).
type Event struct {
	EventID string `ch:"event_id"` // deterministic; replays produce the same id
	Tenant  string `ch:"tenant"`
	Kind    Kind   `ch:"kind"`

	Time       time.Time `ch:"ts"`          // span start or log time (UTC)
	DurationNs uint64    `ch:"duration_ns"` // span end - start; 0 for logs

	Source   Source   `ch:"source"`
	Observer Observer `ch:"observer"`

	TraceID      string `ch:"trace_id"` // lowercase hex, "" when absent
	SpanID       string `ch:"span_id"`
	ParentSpanID string `ch:"parent_span_id"`

	ServiceName     string `ch:"service_name"`
	ServiceInstance string `ch:"service_instance"`
	HostName        string `ch:"host_name"`

	Method          string `ch:"method"` // e.g. tools/call, tools/list, initialize
	ProtocolVersion string `ch:"protocol_version"`
	Transport       string `ch:"transport"`

	SessionID string `ch:"session_id"`
	RequestID string `ch:"request_id"`
	// CallID is shared by the client, server and gateway observations of
	// one call: derived from the trace id, request id and method when the
	// observation has both ids, else the event id (see docs/event.md).
	CallID         string `ch:"call_id"`
	ConversationID string `ch:"conversation_id"`
	SessionKey     string `ch:"session_key"` // session, else conversation, else trace, else user+client

	AgentID   string `ch:"agent_id"` // never empty after mapping (identity.go)
	AgentName string `ch:"agent_name"`
	UserID    string `ch:"user_id"`

	ClientName    string `ch:"client_name"`
	ClientVersion string `ch:"client_version"`
	ClientAddress string `ch:"client_address"`
	UserAgent     string `ch:"user_agent"`

	ServerName    string `ch:"server_name"`
	ServerVersion string `ch:"server_version"`
	ServerAddress string `ch:"server_address"`
	ServerPort    uint16 `ch:"server_port"`

	ToolName    string `ch:"tool_name"`
	ToolCallID  string `ch:"tool_call_id"`
	PromptName  string `ch:"prompt_name"`
	ResourceURI string `ch:"resource_uri"`

	Arguments     string `ch:"arguments"` // JSON, redacted, size-capped
	Result        string `ch:"result"`    // JSON or text, redacted, size-capped
	ArgumentsSize uint32 `ch:"arguments_size"`
	ResultSize    uint32 `ch:"result_size"`

	Outcome    Outcome `ch:"outcome"`
	ErrorType  string  `ch:"error_type"`
	StatusCode int32   `ch:"status_code"` // JSON-RPC or HTTP status, 0 when unknown

	Origin        string    `ch:"origin"`
	TokenSubject  string    `ch:"token_subject"`
	TokenAudience string    `ch:"token_audience"`
	TokenExpires  time.Time `ch:"token_expires"` // zero when unknown
	Scopes        []string  `ch:"scopes"`

	// Tool definition (KindToolDefinition, or a call whose definition is known).
	ToolDescription    string `ch:"tool_description"`
	ToolInputSchema    string `ch:"tool_input_schema"` // canonical JSON
	ToolAnnotations    string `ch:"tool_annotations"`  // canonical JSON
	ToolDefinitionHash string `ch:"tool_definition_hash"`

	Tags       []string `ch:"tags"`        // enrichment, e.g. secret:aws_access_key
	AttrKeys   []string `ch:"attr_keys"`   // every other attribute, as strings
	AttrValues []string `ch:"attr_values"` // parallel to AttrKeys

	IngestedAt time.Time `ch:"ingested_at"`
}

// TagDuplicate marks an observation that another observation by the same
// observer already records (fastmcp's CLIENT span around the MCP SDK's own
// "MCP send" span): it keeps its call_id, and counts of calls skip it.
const TagDuplicate = "duplicate_observation"

// TagCallCounted marks a message observation of a call (its call_id) that
// another observation of the call already counts: the per-minute calls
// rollup skips it (schema 0029); detection and the raw events keep it. The
// ingest role's enrichment sets it for the later observations of a call of
// one agent, the call join for the observations it completes.
const TagCallCounted = "call_already_counted"

// TagJoinedServer marks an observation whose server_name (and version)
// the call join took from another observation of the call: not what this
// observer saw, so the enrichment neither learns a connection's server nor
// derives a session from it.
const TagJoinedServer = "joined:server"

// TagJoinedAgent marks an observation (a server's) whose agent_id the
// call join took from the call's client observation. The enrichment does
// not learn its server for that agent: it arrives up to the join's wait
// after the agent's other observations, so what it taught would depend on
// timing — an agent-level guess made before it arrived names the wrong
// server.
const TagJoinedAgent = "joined:agent"

// HasTag reports whether the event carries tag t.
func (e *Event) HasTag(t string) bool {
	for _, x := range e.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// AddTag adds t unless it is already present.
func (e *Event) AddTag(t string) {
	if !e.HasTag(t) {
		e.Tags = append(e.Tags, t)
	}
}

// Attr returns the value of an extra attribute and whether it was present.
func (e *Event) Attr(key string) (string, bool) {
	for i, k := range e.AttrKeys {
		if k == key && i < len(e.AttrValues) {
			return e.AttrValues[i], true
		}
	}
	return "", false
}

// PartitionKey is the Kafka record key: tenant plus the agent identity
// (agent_id, else user + client, else session, else trace), so one agent's
// events stay ordered on one partition.
func (e *Event) PartitionKey() string {
	switch {
	case e.AgentID != "":
		return e.Tenant + "/agent:" + e.AgentID
	case e.UserID != "" || e.ClientName != "":
		return e.Tenant + "/user:" + e.UserID + "@" + e.ClientName
	case e.SessionKey != "":
		return e.Tenant + "/session:" + e.SessionKey
	default:
		return e.Tenant + "/trace:" + e.TraceID
	}
}
