package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
	"tags", "attr_keys", "attr_values", "ingested_at", "call_id",
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
// eventColumns order, in fresh slices. Exported for the benchmark.
func EventColumnsData(evs []event.Event, now time.Time) []any {
	return new(EventColumnBuffers).Fill(evs, now)
}

// EventColumnBuffers holds the typed column slices of an events insert and
// keeps them for the next Fill, so a writer of many batches allocates them
// once (the analyzer's batches are 50k rows × 56 columns). Until the next
// Fill the slices still reference the last batch's strings. Not safe for
// concurrent use.
type EventColumnBuffers struct {
	eventID, tenant, kind                        []string
	ts                                           []time.Time
	tsNs, dur                                    []uint64
	source, observer                             []string
	traceID, spanID, parentSpanID                []string
	serviceName, serviceInstance, hostName       []string
	method, protocolVersion, transport           []string
	sessionID, requestID, conversationID, callID []string
	sessionKey, agentID, agentName, userID       []string
	clientName, clientVersion, clientAddr, ua    []string
	serverName, serverVersion, serverAddr        []string
	serverPort                                   []uint16
	toolName, toolCallID, promptName, resURI     []string
	args, result                                 []string
	argsSize, resultSize                         []uint32
	outcome, errorType                           []string
	statusCode                                   []int32
	origin, tokenSubject, tokenAudience          []string
	tokenExpires                                 []time.Time
	scopes, tags, attrKeys, attrValues           [][]string
	toolDesc, toolSchema, toolAnnot, toolDefHash []string
	ingestedAt                                   []time.Time
}

// sized returns s with length n, reusing its array when it is big enough.
func sized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Fill writes the columnar form of evs, in eventColumns order, into c's
// slices and returns them (valid until the next Fill). Empty enum fields
// get their defaults; a zero ingested_at becomes now.
func (c *EventColumnBuffers) Fill(evs []event.Event, now time.Time) []any {
	n := len(evs)
	for _, p := range []*[]string{
		&c.eventID, &c.tenant, &c.kind, &c.source, &c.observer,
		&c.traceID, &c.spanID, &c.parentSpanID, &c.serviceName, &c.serviceInstance, &c.hostName,
		&c.method, &c.protocolVersion, &c.transport, &c.sessionID, &c.requestID, &c.conversationID,
		&c.sessionKey, &c.agentID, &c.agentName, &c.userID, &c.clientName, &c.clientVersion, &c.clientAddr, &c.ua,
		&c.serverName, &c.serverVersion, &c.serverAddr, &c.toolName, &c.toolCallID, &c.promptName, &c.resURI,
		&c.args, &c.result, &c.outcome, &c.errorType, &c.origin, &c.tokenSubject, &c.tokenAudience,
		&c.toolDesc, &c.toolSchema, &c.toolAnnot, &c.toolDefHash, &c.callID,
	} {
		*p = sized(*p, n)
	}
	c.ts, c.tokenExpires, c.ingestedAt = sized(c.ts, n), sized(c.tokenExpires, n), sized(c.ingestedAt, n)
	c.tsNs, c.dur = sized(c.tsNs, n), sized(c.dur, n)
	c.serverPort = sized(c.serverPort, n)
	c.argsSize, c.resultSize = sized(c.argsSize, n), sized(c.resultSize, n)
	c.statusCode = sized(c.statusCode, n)
	c.scopes, c.tags, c.attrKeys, c.attrValues = sized(c.scopes, n), sized(c.tags, n), sized(c.attrKeys, n), sized(c.attrValues, n)
	for i := range evs {
		e := &evs[i]
		c.eventID[i] = e.EventID
		c.tenant[i] = e.Tenant
		c.kind[i] = orDefault(e.Kind, event.KindMessage)
		c.ts[i] = dt(e.Time)
		c.tsNs[i] = 0
		if !e.Time.IsZero() {
			c.tsNs[i] = uint64(e.Time.UnixNano())
		}
		c.dur[i] = e.DurationNs
		c.source[i] = orDefault(e.Source, event.SourceSpan)
		c.observer[i] = orDefault(e.Observer, event.ObserverUnknown)
		c.traceID[i], c.spanID[i], c.parentSpanID[i] = e.TraceID, e.SpanID, e.ParentSpanID
		c.serviceName[i], c.serviceInstance[i], c.hostName[i] = e.ServiceName, e.ServiceInstance, e.HostName
		c.method[i], c.protocolVersion[i], c.transport[i] = e.Method, e.ProtocolVersion, e.Transport
		c.sessionID[i], c.requestID[i], c.conversationID[i] = e.SessionID, e.RequestID, e.ConversationID
		c.callID[i] = e.CallID
		c.sessionKey[i], c.agentID[i], c.agentName[i], c.userID[i] = e.SessionKey, e.AgentID, e.AgentName, e.UserID
		c.clientName[i], c.clientVersion[i], c.clientAddr[i], c.ua[i] = e.ClientName, e.ClientVersion, e.ClientAddress, e.UserAgent
		c.serverName[i], c.serverVersion[i], c.serverAddr[i] = e.ServerName, e.ServerVersion, e.ServerAddress
		c.serverPort[i] = e.ServerPort
		c.toolName[i], c.toolCallID[i], c.promptName[i], c.resURI[i] = e.ToolName, e.ToolCallID, e.PromptName, e.ResourceURI
		c.args[i], c.result[i] = e.Arguments, e.Result
		c.argsSize[i], c.resultSize[i] = e.ArgumentsSize, e.ResultSize
		c.outcome[i] = orDefault(e.Outcome, event.OutcomeOK)
		c.errorType[i] = e.ErrorType
		c.statusCode[i] = e.StatusCode
		c.origin[i], c.tokenSubject[i], c.tokenAudience[i] = e.Origin, e.TokenSubject, e.TokenAudience
		c.tokenExpires[i] = dt(e.TokenExpires)
		c.scopes[i], c.tags[i], c.attrKeys[i], c.attrValues[i] = nonNil(e.Scopes), nonNil(e.Tags), nonNil(e.AttrKeys), nonNil(e.AttrValues)
		c.toolDesc[i], c.toolSchema[i], c.toolAnnot[i], c.toolDefHash[i] = e.ToolDescription, e.ToolInputSchema, e.ToolAnnotations, e.ToolDefinitionHash
		if e.IngestedAt.IsZero() {
			c.ingestedAt[i] = now
		} else {
			c.ingestedAt[i] = dt(e.IngestedAt)
		}
	}
	return []any{
		c.eventID, c.tenant, c.kind, c.ts, c.tsNs, c.dur, c.source, c.observer,
		c.traceID, c.spanID, c.parentSpanID, c.serviceName, c.serviceInstance, c.hostName,
		c.method, c.protocolVersion, c.transport, c.sessionID, c.requestID, c.conversationID,
		c.sessionKey, c.agentID, c.agentName, c.userID, c.clientName, c.clientVersion,
		c.clientAddr, c.ua, c.serverName, c.serverVersion, c.serverAddr,
		c.serverPort, c.toolName, c.toolCallID, c.promptName, c.resURI, c.args,
		c.result, c.argsSize, c.resultSize, c.outcome, c.errorType, c.statusCode,
		c.origin, c.tokenSubject, c.tokenAudience, c.tokenExpires, c.scopes,
		c.toolDesc, c.toolSchema, c.toolAnnot, c.toolDefHash,
		c.tags, c.attrKeys, c.attrValues, c.ingestedAt, c.callID,
	}
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
	p, err := s.PrepareEvents(ctx, evs)
	if err != nil {
		return err
	}
	return p.Send()
}

// PreparedEvents is an events INSERT whose rows are already appended to
// the driver's columns (the client-side work of an insert); Send writes
// it. Exactly one of Send and Abort must be called: it holds a pooled
// connection, on which the server waits for the data.
type PreparedEvents struct {
	b       driver.Batch
	cancel  context.CancelFunc // ends the insert's context (closes its connection)
	timeout time.Duration      // the insert timeout, counted from Send
}

// PrepareEvents opens the INSERT of evs (as InsertEvents writes them) and
// appends every column, sending nothing but the statement. ctx also bounds
// the later Send. The analyzer prepares its next batch this way while the
// current one is being written. evs must not be empty.
//
// The insert timeout bounds the prepare and, counted anew, the Send: a
// prepared insert may wait for the one in flight before it is sent.
func (s *Store) PrepareEvents(ctx context.Context, evs []event.Event) (*PreparedEvents, error) {
	ctx, cancel := context.WithCancel(ctx)
	timer := s.afterInsertTimeout(cancel)
	fail := func(err error) (*PreparedEvents, error) {
		timer.Stop()
		cancel()
		return nil, err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("events")+" ("+strings.Join(eventColumns, ", ")+")")
	if err != nil {
		return fail(fmt.Errorf("cannot prepare insert into events: %w", err))
	}
	c := s.colBufs.get()
	defer s.colBufs.put(c) // the driver copies what is appended
	for i, col := range c.Fill(evs, time.Now().UTC().Truncate(time.Second)) {
		if err := b.Column(i).Append(col); err != nil {
			b.Abort() //nolint:errcheck // the append error is the one to report
			return fail(&permanentError{fmt.Errorf("cannot append column %s of events: %w", eventColumns[i], err)})
		}
	}
	if !timer.Stop() {
		b.Abort() //nolint:errcheck
		return fail(fmt.Errorf("cannot prepare insert into events: no answer within %s", s.insertTimeout))
	}
	return &PreparedEvents{b: b, cancel: cancel, timeout: s.insertTimeout}, nil
}

// afterInsertTimeout calls cancel once the insert timeout has passed (never
// when it is 0). Stop it when the step it bounds is over.
func (s *Store) afterInsertTimeout(cancel context.CancelFunc) *time.Timer {
	d := s.insertTimeout
	if d <= 0 {
		d = 1<<63 - 1
	}
	return time.AfterFunc(d, cancel)
}

// Send writes the prepared rows and releases the connection.
func (p *PreparedEvents) Send() error {
	defer p.cancel()
	if p.timeout > 0 {
		timer := time.AfterFunc(p.timeout, p.cancel)
		defer timer.Stop()
	}
	if err := p.b.Send(); err != nil {
		return fmt.Errorf("cannot insert into events: %w", err)
	}
	return nil
}

// Abort drops the prepared rows (nothing is inserted) and releases the
// connection.
func (p *PreparedEvents) Abort() {
	p.b.Abort() //nolint:errcheck // only "already sent", which is harmless
	p.cancel()
}

// colBufPool keeps a couple of EventColumnBuffers for InsertEvents (a
// sync.Pool would drop them at every GC, which a busy analyzer runs often).
type colBufPool struct {
	mu   sync.Mutex
	free []*EventColumnBuffers
}

func (p *colBufPool) get() *EventColumnBuffers {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free = p.free[:n-1]
		return c
	}
	return new(EventColumnBuffers)
}

func (p *colBufPool) put(c *EventColumnBuffers) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < 2 {
		p.free = append(p.free, c)
	}
}

var findingColumns = []string{
	"finding_id", "tenant", "ts", "rule_id", "rule_version", "rule_title", "rule_kind",
	"severity", "tags", "group_key", "summary", "agent_id", "user_id", "session_key",
	"server_name", "tool_name", "event_ids", "evidence", "incident_id", "inserted_at",
	"suppress_key", "suppress_window", "suppressed_count", "last_event_id", "last_seen", "suppress_pos",
}

// InsertFindings writes findings. finding_id is deterministic, so a replay
// collapses on merge. Every finding must carry a valid severity.
//
// The findings table's sort key has ts, and ReplacingMergeTree collapses
// only rows with equal sort keys: a finding id stored again with another ts
// (the client's and the server's observation of one call give one finding
// id, each with its own time; they reach the respond role in two batches)
// would stay a second row. So a finding id already stored keeps the ts of
// its stored row, and its event ids are the union of both (sameFindingRow).
func (s *Store) InsertFindings(ctx context.Context, fs []event.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	for _, f := range fs {
		if !f.Severity.Valid() {
			return &permanentError{fmt.Errorf("cannot insert finding %s: invalid severity %q", f.FindingID, f.Severity)}
		}
	}
	now := time.Now().UTC()
	ctx, cancel := s.writeCtx(ctx)
	defer cancel()
	fs, err := s.sameFindingRow(ctx, fs)
	if err != nil {
		return err
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("findings")+" ("+strings.Join(findingColumns, ", ")+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert into findings: %w", err)
	}
	defer b.Abort() //nolint:errcheck
	for _, f := range fs {
		evidence := f.Evidence
		if evidence == "" {
			evidence = "{}"
		}
		if err := b.Append(f.FindingID, f.Tenant, dt(f.Time), f.RuleID, f.RuleVersion, f.RuleTitle, f.RuleKind,
			string(f.Severity), nonNil(f.Tags), f.GroupKey, f.Summary, f.AgentID, f.UserID, f.SessionKey,
			f.ServerName, f.ToolName, nonNil(f.EventIDs), evidence, f.IncidentID, now,
			f.SuppressKey, uint32(f.SuppressWindow/time.Second), f.SuppressedCount, f.LastEventID, dt(f.LastSeen), f.SuppressPos); err != nil {
			return &permanentError{fmt.Errorf("cannot append finding %s: %w", f.FindingID, err)}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert findings: %w", err)
	}
	return nil
}

// storedFindingSpan is how far from a finding's ts sameFindingRow looks for
// an earlier row of its id: the observations of one call are seconds apart
// (an hour leaves room for clock skew between the client's and the server's
// hosts). The findings table's key (tenant, rule_id, ts, …) and its daily
// partitions keep the lookup to that range.
const storedFindingSpan = time.Hour

// sameFindingRow returns fs (a copy where anything changes) with the ts of
// each finding id as already stored, else as its first occurrence in fs,
// and the event ids of every row of that id (stored ones first): one row
// per finding id.
func (s *Store) sameFindingRow(ctx context.Context, fs []event.Finding) ([]event.Finding, error) {
	type row struct {
		ts  time.Time
		ids []string
	}
	var tenants, rules, ids []string
	lo, hi := dt(fs[0].Time), dt(fs[0].Time)
	for _, f := range fs {
		tenants, rules, ids = append(tenants, f.Tenant), append(rules, f.RuleID), append(ids, f.FindingID)
		if t := dt(f.Time); t.Before(lo) {
			lo = t
		} else if t.After(hi) {
			hi = t
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT finding_id, min(ts), groupUniqArrayArray(event_ids) FROM "+s.table("findings")+
		" WHERE has(?, tenant) AND has(?, rule_id) AND ts >= ? AND ts <= ? AND has(?, finding_id) GROUP BY finding_id",
		tenants, rules, lo.Add(-storedFindingSpan), hi.Add(storedFindingSpan), ids)
	if err != nil {
		return nil, fmt.Errorf("cannot read stored findings: %w", err)
	}
	stored := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.ts, &r.ids); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read stored findings: %w", err)
		}
		stored[id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read stored findings: %w", err)
	}
	out := fs
	copied := false
	for i := range fs {
		f := &fs[i]
		r, ok := stored[f.FindingID]
		if !ok {
			// Not stored: the first of its id in this batch sets the row.
			stored[f.FindingID] = row{ts: dt(f.Time), ids: f.EventIDs}
			continue
		}
		union := unionIDs(r.ids, f.EventIDs)
		if r.ts.Equal(dt(f.Time)) && len(union) == len(f.EventIDs) {
			continue
		}
		if !copied {
			out, copied = append([]event.Finding(nil), fs...), true
		}
		out[i].Time = r.ts
		out[i].EventIDs = union
		stored[f.FindingID] = row{ts: r.ts, ids: union}
	}
	return out, nil
}

// unionIDs is a followed by the ids of b not in a.
func unionIDs(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
