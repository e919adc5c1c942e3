package plugin

import (
	"context"
	"fmt"
	"time"
)

// Incident is the current version of an incident.
type Incident struct {
	IncidentID   string    `json:"incident_id"`
	Version      uint64    `json:"version"`
	Tenant       string    `json:"tenant"`
	RuleID       string    `json:"rule_id"`
	RuleTitle    string    `json:"rule_title"`
	Title        string    `json:"title"`
	Summary      string    `json:"summary"`
	Status       string    `json:"status"`
	Severity     string    `json:"severity"`
	Tags         []string  `json:"tags"`
	FindingCount uint32    `json:"finding_count"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	AgentID      string    `json:"agent_id"`
	UserID       string    `json:"user_id"`
	SessionKey   string    `json:"session_key"`
	ServerName   string    `json:"server_name"`
	ToolName     string    `json:"tool_name"`
	Assignee     string    `json:"assignee"`
	UpdatedBy    string    `json:"updated_by"`
	Note         string    `json:"note"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// IncidentFilter selects incidents; empty fields match everything.
type IncidentFilter struct {
	Status, Severity, RuleID, Tenant, Agent, ID string
	// Tenants is the reader's scope (nil = every tenant, empty = none).
	Tenants []string
	// Since, when set, keeps incidents last seen at or after it.
	Since time.Time
	Limit int
}

const incidentCols = "incident_id, version, toString(tenant), toString(rule_id), rule_title, title, summary, toString(status), toString(severity), tags, finding_count, first_seen, last_seen, agent_id, user_id, session_key, server_name, tool_name, assignee, updated_by, note, updated_at"

// Incidents returns current incident versions (FINAL collapses versions),
// most recent first.
func (s *Store) Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	limit := f.Limit
	if limit <= 0 || limit > 5000 {
		limit = 500
	}
	var since int64
	if !f.Since.IsZero() {
		since = f.Since.Unix()
	}
	// FINAL keeps the highest version per (tenant, incident_id); the filter on
	// status must apply after collapsing, which FINAL guarantees.
	q := "SELECT " + incidentCols + " FROM " + s.t("incidents") + " FINAL WHERE (? = '' OR toString(status) = ?) AND (? = '' OR toString(severity) = ?)" +
		" AND (? = '' OR rule_id = ?) AND (? = '' OR tenant = ?) AND (? = '' OR agent_id = ?) AND (? = '' OR incident_id = ?) AND last_seen >= toDateTime(?)" +
		scopeAnd(f.Tenants) + " ORDER BY last_seen DESC, incident_id LIMIT ?"
	args := []any{f.Status, f.Status, f.Severity, f.Severity, f.RuleID, f.RuleID, f.Tenant, f.Tenant, f.Agent, f.Agent, f.ID, f.ID, since}
	rows, err := s.conn.Query(ctx, q, append(append(args, scopeArgs(f.Tenants)...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query incidents: %w", err)
	}
	defer rows.Close()
	out := []Incident{}
	for rows.Next() {
		var i Incident
		if err := rows.Scan(&i.IncidentID, &i.Version, &i.Tenant, &i.RuleID, &i.RuleTitle, &i.Title, &i.Summary, &i.Status, &i.Severity, &i.Tags,
			&i.FindingCount, &i.FirstSeen, &i.LastSeen, &i.AgentID, &i.UserID, &i.SessionKey, &i.ServerName, &i.ToolName, &i.Assignee,
			&i.UpdatedBy, &i.Note, &i.UpdatedAt); err != nil {
			return nil, fmt.Errorf("cannot scan incidents: %w", err)
		}
		i.FirstSeen, i.LastSeen, i.UpdatedAt = i.FirstSeen.UTC(), i.LastSeen.UTC(), i.UpdatedAt.UTC()
		out = append(out, i)
	}
	return out, rows.Err()
}

// OpenBySeverity counts incidents that are open or acknowledged, by severity.
// scope is the reader's tenants (nil = all).
func (s *Store) OpenBySeverity(ctx context.Context, tenant string, scope []string) (map[string]uint64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	q := "SELECT toString(severity), count() FROM " + s.t("incidents") + " FINAL WHERE status IN ('open', 'acknowledged') AND (? = '' OR tenant = ?)" +
		scopeAnd(scope) + " GROUP BY severity"
	rows, err := s.conn.Query(ctx, q, append([]any{tenant, tenant}, scopeArgs(scope)...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query open incidents: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0}
	for rows.Next() {
		var sev string
		var n uint64
		if err := rows.Scan(&sev, &n); err != nil {
			return nil, fmt.Errorf("cannot scan open incidents: %w", err)
		}
		out[sev] = n
	}
	return out, rows.Err()
}

// Finding is one detection hit.
type Finding struct {
	FindingID   string    `json:"finding_id"`
	Time        time.Time `json:"ts"`
	RuleID      string    `json:"rule_id"`
	RuleVersion string    `json:"rule_version"`
	RuleTitle   string    `json:"rule_title"`
	Severity    string    `json:"severity"`
	Summary     string    `json:"summary"`
	AgentID     string    `json:"agent_id"`
	SessionKey  string    `json:"session_key"`
	ServerName  string    `json:"server_name"`
	ToolName    string    `json:"tool_name"`
	EventIDs    []string  `json:"event_ids"`
	Evidence    string    `json:"evidence"`
	IncidentID  string    `json:"incident_id"`
}

// FindingFilter selects findings.
type FindingFilter struct {
	From, To               time.Time
	Incident, Rule, Tenant string
	// Tenants is the reader's scope (nil = every tenant, empty = none).
	Tenants []string
	Limit   int
}

// Findings returns findings (deduplicated by finding_id), newest first.
func (s *Store) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	limit := f.Limit
	if limit <= 0 || limit > 5000 {
		limit = 500
	}
	to := f.To
	if to.IsZero() {
		to = time.Now().Add(24 * time.Hour)
	}
	q := "SELECT finding_id, ts, toString(rule_id), rule_version, rule_title, toString(severity), summary, agent_id, session_key, toString(server_name), tool_name, event_ids, evidence, incident_id FROM " +
		s.t("findings") + " WHERE ts >= toDateTime(?) AND ts <= toDateTime(?) AND (? = '' OR incident_id = ?) AND (? = '' OR rule_id = ?) AND (? = '' OR tenant = ?)" +
		scopeAnd(f.Tenants) + " ORDER BY ts DESC, finding_id LIMIT 1 BY finding_id LIMIT ?"
	args := []any{f.From.Unix(), to.Unix(), f.Incident, f.Incident, f.Rule, f.Rule, f.Tenant, f.Tenant}
	rows, err := s.conn.Query(ctx, q, append(append(args, scopeArgs(f.Tenants)...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query findings: %w", err)
	}
	defer rows.Close()
	out := []Finding{}
	for rows.Next() {
		var x Finding
		if err := rows.Scan(&x.FindingID, &x.Time, &x.RuleID, &x.RuleVersion, &x.RuleTitle, &x.Severity, &x.Summary, &x.AgentID, &x.SessionKey,
			&x.ServerName, &x.ToolName, &x.EventIDs, &x.Evidence, &x.IncidentID); err != nil {
			return nil, fmt.Errorf("cannot scan findings: %w", err)
		}
		x.Time = x.Time.UTC()
		out = append(out, x)
	}
	return out, rows.Err()
}

// Action is one audit row (notification, playbook step, approval...).
type Action struct {
	ActionID   string    `json:"action_id"`
	Time       time.Time `json:"ts"`
	IncidentID string    `json:"incident_id"`
	Kind       string    `json:"kind"`
	Target     string    `json:"target"`
	Playbook   string    `json:"playbook"`
	Step       string    `json:"step"`
	Attempt    uint32    `json:"attempt"`
	Outcome    string    `json:"outcome"`
	Actor      string    `json:"actor"`
	Detail     string    `json:"detail"`
	Key        string    `json:"idempotency_key"`
}

// Actions returns an incident's audit rows, oldest first; scope is the
// reader's tenants (nil = all).
func (s *Store) Actions(ctx context.Context, incidentID string, scope []string) ([]Action, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	q := "SELECT action_id, ts, incident_id, toString(kind), target, playbook, step, attempt, toString(outcome), actor, detail, idempotency_key FROM " +
		s.t("actions") + " WHERE incident_id = ?" + scopeAnd(scope) + " ORDER BY ts, action_id LIMIT 1000"
	rows, err := s.conn.Query(ctx, q, append([]any{incidentID}, scopeArgs(scope)...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query actions: %w", err)
	}
	defer rows.Close()
	out := []Action{}
	for rows.Next() {
		var a Action
		if err := rows.Scan(&a.ActionID, &a.Time, &a.IncidentID, &a.Kind, &a.Target, &a.Playbook, &a.Step, &a.Attempt, &a.Outcome, &a.Actor, &a.Detail, &a.Key); err != nil {
			return nil, fmt.Errorf("cannot scan actions: %w", err)
		}
		a.Time = a.Time.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// RuleHits is one rule's findings in the range.
type RuleHits struct {
	RuleID    string    `json:"rule_id"`
	RuleTitle string    `json:"rule_title"`
	Severity  string    `json:"severity"`
	Hits      uint64    `json:"hits"`
	Incidents uint64    `json:"incidents"`
	LastHit   time.Time `json:"last_hit"`
}

// RuleHitsPoint is findings per rule per bucket.
type RuleHitsPoint struct {
	Time   time.Time `json:"time"`
	RuleID string    `json:"rule_id"`
	Hits   uint64    `json:"hits"`
}

// DetectionHits counts findings per rule, and per rule over time.
func (s *Store) DetectionHits(ctx context.Context, f Filter) ([]RuleHits, []RuleHitsPoint, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	w := "ts >= toDateTime(?) AND ts <= toDateTime(?) AND (? = '' OR tenant = ?)" + scopeAnd(f.Tenants)
	args := append([]any{f.from(), f.to(), f.Tenant, f.Tenant}, scopeArgs(f.Tenants)...)
	q := "SELECT toString(rule_id), any(rule_title), toString(max(severity)), uniqExact(finding_id) AS hits, uniqExactIf(incident_id, incident_id != ''), max(ts) FROM " +
		s.t("findings") + " WHERE " + w + " GROUP BY rule_id ORDER BY hits DESC, rule_id"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot query detection hits: %w", err)
	}
	defer rows.Close()
	hits := []RuleHits{}
	for rows.Next() {
		var r RuleHits
		if err := rows.Scan(&r.RuleID, &r.RuleTitle, &r.Severity, &r.Hits, &r.Incidents, &r.LastHit); err != nil {
			return nil, nil, fmt.Errorf("cannot scan detection hits: %w", err)
		}
		r.LastHit = r.LastHit.UTC()
		hits = append(hits, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("cannot read detection hits: %w", err)
	}
	step := f.step()
	q = "SELECT toDateTime(intDiv(toUInt32(ts), ?) * ?) AS t, toString(rule_id), uniqExact(finding_id) FROM " + s.t("findings") +
		" WHERE " + w + " GROUP BY t, rule_id ORDER BY t, rule_id"
	rows2, err := s.conn.Query(ctx, q, append([]any{step, step}, args...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot query detection series: %w", err)
	}
	defer rows2.Close()
	series := []RuleHitsPoint{}
	for rows2.Next() {
		var p RuleHitsPoint
		if err := rows2.Scan(&p.Time, &p.RuleID, &p.Hits); err != nil {
			return nil, nil, fmt.Errorf("cannot scan detection series: %w", err)
		}
		p.Time = p.Time.UTC()
		series = append(series, p)
	}
	return hits, series, rows2.Err()
}

// ToolRow is one tool in the inventory.
type ToolRow struct {
	Tenant      string    `json:"tenant"`
	ServerName  string    `json:"server_name"`
	ToolName    string    `json:"tool_name"`
	CurrentHash string    `json:"definition_hash"`
	Description string    `json:"description"`
	Versions    uint64    `json:"versions"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	LastChanged time.Time `json:"last_changed"`
	Calls       uint64    `json:"calls"`
}

// Tools returns the tool inventory with calls in the range.
func (s *Store) Tools(ctx context.Context, f Filter) ([]ToolRow, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	// argMax over last_seen picks the newest definition; repeated snapshots of
	// the same hash (not yet merged) do not change the result.
	q := "SELECT toString(tenant), toString(server_name), tool_name, argMax(definition_hash, last_seen), argMax(description, last_seen), uniqExact(definition_hash)," +
		" min(first_seen), max(last_seen), max(first_seen) FROM " + s.t("tool_definitions") +
		" WHERE (? = '' OR tenant = ?) AND (? = '' OR server_name = ?)" + scopeAnd(f.Tenants) +
		" GROUP BY tenant, server_name, tool_name ORDER BY server_name, tool_name LIMIT ?"
	args := append([]any{f.Tenant, f.Tenant, f.Server, f.Server}, scopeArgs(f.Tenants)...)
	rows, err := s.conn.Query(ctx, q, append(args, f.limit(2000, 20000))...)
	if err != nil {
		return nil, fmt.Errorf("cannot query tool inventory: %w", err)
	}
	defer rows.Close()
	out := []ToolRow{}
	for rows.Next() {
		var t ToolRow
		if err := rows.Scan(&t.Tenant, &t.ServerName, &t.ToolName, &t.CurrentHash, &t.Description, &t.Versions, &t.FirstSeen, &t.LastSeen, &t.LastChanged); err != nil {
			return nil, fmt.Errorf("cannot scan tool inventory: %w", err)
		}
		t.FirstSeen, t.LastSeen, t.LastChanged = t.FirstSeen.UTC(), t.LastSeen.UTC(), t.LastChanged.UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read tool inventory: %w", err)
	}
	uf := f
	uf.Limit = 10000
	use, err := s.ToolUsage(ctx, uf)
	if err != nil {
		return nil, err
	}
	calls := map[string]uint64{}
	for _, u := range use {
		calls[u.ServerName+"\x00"+u.ToolName] += u.Calls
	}
	for i := range out {
		out[i].Calls = calls[out[i].ServerName+"\x00"+out[i].ToolName]
	}
	return out, nil
}

// ToolDefinition is one version of a tool's definition.
type ToolDefinition struct {
	ServerName  string    `json:"server_name"`
	ToolName    string    `json:"tool_name"`
	Hash        string    `json:"definition_hash"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Description string    `json:"description"`
	InputSchema string    `json:"input_schema"`
	Annotations string    `json:"annotations"`
	// ServerVersion is the version reported with the definition's first
	// sighting; Facts and Diff (against the tool's previous definition in
	// the answer) are null for rows written before schema 0023.
	ServerVersion string           `json:"server_version"`
	Facts         *DefinitionFacts `json:"facts"`
	Diff          *DefinitionDiff  `json:"diff"`
}

// ToolDefinitions returns definition versions, oldest first. With f.Server
// and f.Tool set, one tool's history; otherwise versions first seen in the
// range, for tools that have more than one version.
func (s *Store) ToolDefinitions(ctx context.Context, f Filter) ([]ToolDefinition, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var q string
	var args []any
	sel := "SELECT toString(server_name), tool_name, definition_hash, min(first_seen) AS fs, max(last_seen), argMax(description, last_seen), argMax(input_schema, last_seen), argMax(annotations, last_seen), " +
		"argMin(server_version, first_seen), argMax(facts, last_seen) FROM " + s.t("tool_definitions")
	if f.Server != "" && f.Tool != "" {
		q = sel + " WHERE (? = '' OR tenant = ?) AND server_name = ? AND tool_name = ?" + scopeAnd(f.Tenants) +
			" GROUP BY server_name, tool_name, definition_hash ORDER BY fs, definition_hash LIMIT 1000"
		args = append([]any{f.Tenant, f.Tenant, f.Server, f.Tool}, scopeArgs(f.Tenants)...)
	} else {
		q = sel + " WHERE (? = '' OR tenant = ?)" + scopeAnd(f.Tenants) + " AND (server_name, tool_name) IN (SELECT server_name, tool_name FROM " + s.t("tool_definitions") +
			" WHERE (? = '' OR tenant = ?)" + scopeAnd(f.Tenants) + " GROUP BY server_name, tool_name HAVING uniqExact(definition_hash) > 1)" +
			" GROUP BY server_name, tool_name, definition_hash HAVING fs >= toDateTime(?) AND fs <= toDateTime(?) ORDER BY fs DESC, server_name, tool_name LIMIT ?"
		args = append(append(append([]any{f.Tenant, f.Tenant}, scopeArgs(f.Tenants)...), f.Tenant, f.Tenant), scopeArgs(f.Tenants)...)
		args = append(args, f.from(), f.to(), f.limit(500, 5000))
	}
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query tool definitions: %w", err)
	}
	defer rows.Close()
	out := []ToolDefinition{}
	for rows.Next() {
		var d ToolDefinition
		var facts string
		if err := rows.Scan(&d.ServerName, &d.ToolName, &d.Hash, &d.FirstSeen, &d.LastSeen, &d.Description, &d.InputSchema, &d.Annotations,
			&d.ServerVersion, &facts); err != nil {
			return nil, fmt.Errorf("cannot scan tool definitions: %w", err)
		}
		d.FirstSeen, d.LastSeen = d.FirstSeen.UTC(), d.LastSeen.UTC()
		d.Facts = parseFacts(facts)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read tool definitions: %w", err)
	}
	// One tool's history is oldest first: each definition diffs against
	// the one before it.
	if f.Server != "" && f.Tool != "" {
		for i := 1; i < len(out); i++ {
			out[i].Diff = diffDefinitions(&out[i-1], &out[i])
		}
	}
	return out, nil
}
