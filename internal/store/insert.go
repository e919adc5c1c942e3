package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// eventColumns is the explicit column list of every events INSERT, in the
// order InsertEvents appends them.
var eventColumns = []string{
	"event_id", "tenant", "kind", "ts", "ts_ns", "duration_ns", "source", "observer",
	"trace_id", "span_id", "parent_span_id", "service_name", "service_instance", "host_name",
	"method", "protocol_version", "transport", "session_id", "request_id", "conversation_id",
	"session_key", "agent_id", "agent_name", "user_id", "client_name", "client_version",
	"client_address", "user_agent", "server_name", "server_version", "server_address",
	"server_port", "tool_name", "tool_call_id", "prompt_name", "resource_uri", "arguments",
	"result", "arguments_size", "result_size", "outcome", "error_type", "status_code",
	"origin", "token_subject", "token_audience", "token_expires", "scopes",
	"tool_description", "tool_input_schema", "tool_annotations", "tool_definition_hash",
	"tags", "attr_keys", "attr_values", "ingested_at",
}

// EventColumns returns the events column list InsertEvents writes.
func EventColumns() []string { return append([]string(nil), eventColumns...) }

// epoch is what a zero time is stored as (DateTime cannot hold year 1).
var epoch = time.Unix(0, 0).UTC()

func dt(t time.Time) time.Time {
	if t.IsZero() || t.Before(epoch) {
		return epoch
	}
	return t.UTC()
}

func orDefault[T ~string](v, def T) string {
	if v == "" {
		return string(def)
	}
	return string(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// EventColumnsData is the columnar form of a slice of events, in
// eventColumns order. Exported for the benchmark's ceiling measurement.
func EventColumnsData(evs []event.Event, now time.Time) []any {
	n := len(evs)
	str := func() []string { return make([]string, n) }
	var (
		eventID, tenant, kind                        = str(), str(), str()
		ts                                           = make([]time.Time, n)
		tsNs, dur                                    = make([]uint64, n), make([]uint64, n)
		source, observer                             = str(), str()
		traceID, spanID, parentSpanID                = str(), str(), str()
		serviceName, serviceInstance, hostName       = str(), str(), str()
		method, protocolVersion, transport           = str(), str(), str()
		sessionID, requestID, conversationID         = str(), str(), str()
		sessionKey, agentID, agentName, userID       = str(), str(), str(), str()
		clientName, clientVersion, clientAddr, ua    = str(), str(), str(), str()
		serverName, serverVersion, serverAddr        = str(), str(), str()
		serverPort                                   = make([]uint16, n)
		toolName, toolCallID, promptName, resURI     = str(), str(), str(), str()
		args, result                                 = str(), str()
		argsSize, resultSize                         = make([]uint32, n), make([]uint32, n)
		outcome, errorType                           = str(), str()
		statusCode                                   = make([]int32, n)
		origin, tokenSubject, tokenAudience          = str(), str(), str()
		tokenExpires                                 = make([]time.Time, n)
		scopes, tags, attrKeys, attrValues           = make([][]string, n), make([][]string, n), make([][]string, n), make([][]string, n)
		toolDesc, toolSchema, toolAnnot, toolDefHash = str(), str(), str(), str()
		ingestedAt                                   = make([]time.Time, n)
	)
	for i := range evs {
		e := &evs[i]
		eventID[i] = e.EventID
		tenant[i] = e.Tenant
		kind[i] = orDefault(e.Kind, event.KindMessage)
		ts[i] = dt(e.Time)
		if !e.Time.IsZero() {
			tsNs[i] = uint64(e.Time.UnixNano())
		}
		dur[i] = e.DurationNs
		source[i] = orDefault(e.Source, event.SourceSpan)
		observer[i] = orDefault(e.Observer, event.ObserverUnknown)
		traceID[i], spanID[i], parentSpanID[i] = e.TraceID, e.SpanID, e.ParentSpanID
		serviceName[i], serviceInstance[i], hostName[i] = e.ServiceName, e.ServiceInstance, e.HostName
		method[i], protocolVersion[i], transport[i] = e.Method, e.ProtocolVersion, e.Transport
		sessionID[i], requestID[i], conversationID[i] = e.SessionID, e.RequestID, e.ConversationID
		sessionKey[i], agentID[i], agentName[i], userID[i] = e.SessionKey, e.AgentID, e.AgentName, e.UserID
		clientName[i], clientVersion[i], clientAddr[i], ua[i] = e.ClientName, e.ClientVersion, e.ClientAddress, e.UserAgent
		serverName[i], serverVersion[i], serverAddr[i] = e.ServerName, e.ServerVersion, e.ServerAddress
		serverPort[i] = e.ServerPort
		toolName[i], toolCallID[i], promptName[i], resURI[i] = e.ToolName, e.ToolCallID, e.PromptName, e.ResourceURI
		args[i], result[i] = e.Arguments, e.Result
		argsSize[i], resultSize[i] = e.ArgumentsSize, e.ResultSize
		outcome[i] = orDefault(e.Outcome, event.OutcomeOK)
		errorType[i] = e.ErrorType
		statusCode[i] = e.StatusCode
		origin[i], tokenSubject[i], tokenAudience[i] = e.Origin, e.TokenSubject, e.TokenAudience
		tokenExpires[i] = dt(e.TokenExpires)
		scopes[i], tags[i], attrKeys[i], attrValues[i] = nonNil(e.Scopes), nonNil(e.Tags), nonNil(e.AttrKeys), nonNil(e.AttrValues)
		toolDesc[i], toolSchema[i], toolAnnot[i], toolDefHash[i] = e.ToolDescription, e.ToolInputSchema, e.ToolAnnotations, e.ToolDefinitionHash
		if e.IngestedAt.IsZero() {
			ingestedAt[i] = now
		} else {
			ingestedAt[i] = dt(e.IngestedAt)
		}
	}
	return []any{
		eventID, tenant, kind, ts, tsNs, dur, source, observer,
		traceID, spanID, parentSpanID, serviceName, serviceInstance, hostName,
		method, protocolVersion, transport, sessionID, requestID, conversationID,
		sessionKey, agentID, agentName, userID, clientName, clientVersion,
		clientAddr, ua, serverName, serverVersion, serverAddr,
		serverPort, toolName, toolCallID, promptName, resURI, args,
		result, argsSize, resultSize, outcome, errorType, statusCode,
		origin, tokenSubject, tokenAudience, tokenExpires, scopes,
		toolDesc, toolSchema, toolAnnot, toolDefHash,
		tags, attrKeys, attrValues, ingestedAt,
	}
}

// insertColumns sends one columnar batch: cols[i] is appended to column i.
func (s *Store) insertColumns(ctx context.Context, table string, columns []string, cols []any) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table(table)+" ("+strings.Join(columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert into %s: %w", table, err)
	}
	defer b.Abort() //nolint:errcheck // no-op after Send
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("cannot append column %s of %s: %w", columns[i], table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert into %s: %w", table, err)
	}
	return nil
}

// InsertEvents writes events in one columnar INSERT. Events with the same
// event_id collapse on merge (ReplacingMergeTree), and the per-minute rollup
// counts distinct event ids, so re-inserting a batch after a crash changes
// no count. Empty enum fields get their defaults (kind message, source span,
// observer unknown, outcome ok); a zero ingested_at becomes now.
func (s *Store) InsertEvents(ctx context.Context, evs []event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.insertColumns(ctx, "events", eventColumns, EventColumnsData(evs, time.Now().UTC().Truncate(time.Second)))
}

var findingColumns = []string{
	"finding_id", "tenant", "ts", "rule_id", "rule_version", "rule_title", "rule_kind",
	"severity", "tags", "group_key", "summary", "agent_id", "user_id", "session_key",
	"server_name", "tool_name", "event_ids", "evidence", "incident_id", "inserted_at",
}

// InsertFindings writes findings. finding_id is deterministic, so a replay
// collapses on merge. Every finding must carry a valid severity.
func (s *Store) InsertFindings(ctx context.Context, fs []event.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("findings")+" ("+strings.Join(findingColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert into findings: %w", err)
	}
	defer b.Abort() //nolint:errcheck
	for _, f := range fs {
		if !f.Severity.Valid() {
			return fmt.Errorf("cannot insert finding %s: invalid severity %q", f.FindingID, f.Severity)
		}
		evidence := f.Evidence
		if evidence == "" {
			evidence = "{}"
		}
		if err := b.Append(f.FindingID, f.Tenant, dt(f.Time), f.RuleID, f.RuleVersion, f.RuleTitle, f.RuleKind,
			string(f.Severity), nonNil(f.Tags), f.GroupKey, f.Summary, f.AgentID, f.UserID, f.SessionKey,
			f.ServerName, f.ToolName, nonNil(f.EventIDs), evidence, f.IncidentID, now); err != nil {
			return fmt.Errorf("cannot append finding %s: %w", f.FindingID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert findings: %w", err)
	}
	return nil
}
