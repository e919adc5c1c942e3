package incident

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// CHStore persists incidents, findings and actions in ClickHouse (tables of
// schema/0004–0006) through a clickhouse-go native connection. Every insert
// lists its columns; every query is parameterized.
type CHStore struct {
	conn driver.Conn
	db   string
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewCHStore wraps conn; database is the one holding the mcpwatch tables.
func NewCHStore(conn driver.Conn, database string) (*CHStore, error) {
	if !identRe.MatchString(database) {
		return nil, fmt.Errorf("cannot use database name %q: not an identifier", database)
	}
	return &CHStore{conn: conn, db: database}, nil
}

func (s *CHStore) t(name string) string { return s.db + "." + name }

const incidentCols = `incident_id, version, tenant, rule_id, rule_title, group_key, title, summary, status, severity, tags,
 finding_count, first_seen, last_seen, agent_id, user_id, session_key, server_name, tool_name, assignee,
 suppressed_until, updated_by, note, created_at, updated_at`

// InsertIncidentVersions appends incident versions.
func (s *CHStore) InsertIncidentVersions(ctx context.Context, incs []Incident) error {
	if len(incs) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("incidents")+" ("+incidentCols+")")
	if err != nil {
		return fmt.Errorf("cannot prepare incidents insert: %w", err)
	}
	defer b.Abort()
	for _, i := range incs {
		tags := i.Tags
		if tags == nil {
			tags = []string{}
		}
		if err := b.Append(i.IncidentID, i.Version, i.Tenant, i.RuleID, i.RuleTitle, i.GroupKey, i.Title, i.Summary,
			string(i.Status), string(i.Severity), tags, i.FindingCount, chTime(i.FirstSeen), chTime(i.LastSeen),
			i.AgentID, i.UserID, i.SessionKey, i.ServerName, i.ToolName, i.Assignee, chTime(i.SuppressedUntil),
			i.UpdatedBy, i.Note, chTime(i.CreatedAt), chTime(i.UpdatedAt)); err != nil {
			return fmt.Errorf("cannot append incident row: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert incidents: %w", err)
	}
	return nil
}

// chTime maps the zero time to the Unix epoch (DateTime cannot hold year 1).
func chTime(t time.Time) time.Time {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

func fromCHTime(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t.UTC()
}

func (s *CHStore) queryIncidents(ctx context.Context, where string, args ...any) ([]Incident, error) {
	q := "SELECT " + incidentCols + " FROM " + s.t("incidents") + " FINAL " + where
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query incidents: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		var i Incident
		var status, sev string
		if err := rows.Scan(&i.IncidentID, &i.Version, &i.Tenant, &i.RuleID, &i.RuleTitle, &i.GroupKey, &i.Title, &i.Summary,
			&status, &sev, &i.Tags, &i.FindingCount, &i.FirstSeen, &i.LastSeen, &i.AgentID, &i.UserID, &i.SessionKey,
			&i.ServerName, &i.ToolName, &i.Assignee, &i.SuppressedUntil, &i.UpdatedBy, &i.Note, &i.CreatedAt, &i.UpdatedAt); err != nil {
			return nil, fmt.Errorf("cannot scan incident: %w", err)
		}
		i.Status, i.Severity = Status(status), event.Severity(sev)
		i.FirstSeen, i.LastSeen = fromCHTime(i.FirstSeen), fromCHTime(i.LastSeen)
		i.SuppressedUntil = fromCHTime(i.SuppressedUntil)
		i.CreatedAt, i.UpdatedAt = fromCHTime(i.CreatedAt), fromCHTime(i.UpdatedAt)
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read incidents: %w", err)
	}
	return out, nil
}

// LoadActive returns the current version of every incident that is not
// resolved, plus resolved ones updated at or after resolvedSince (candidates
// for a reopen).
func (s *CHStore) LoadActive(ctx context.Context, resolvedSince time.Time) ([]Incident, error) {
	return s.queryIncidents(ctx, "WHERE status != 'resolved' OR updated_at >= ?", chTime(resolvedSince))
}

// GetIncident returns the current version of one incident or ErrNotFound.
func (s *CHStore) GetIncident(ctx context.Context, id string) (Incident, error) {
	incs, err := s.queryIncidents(ctx, "WHERE incident_id = ?", id)
	if err != nil {
		return Incident{}, err
	}
	if len(incs) == 0 {
		return Incident{}, ErrNotFound
	}
	best := incs[0]
	for _, i := range incs[1:] { // FINAL collapses per partition; keep the newest
		if i.Version > best.Version {
			best = i
		}
	}
	return best, nil
}

// Filter selects incidents for ListIncidents; empty fields match all.
type Filter struct {
	Status   Status
	Severity event.Severity // minimum severity
	RuleID   string
	Tenant   string
	Limit    int // 1..500, default 100
	Offset   int
}

// ListIncidents returns the current versions matching f, newest last_seen
// first, and the total number that match.
func (s *CHStore) ListIncidents(ctx context.Context, f Filter) ([]Incident, uint64, error) {
	var conds []string
	var args []any
	if f.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, string(f.Status))
	}
	if f.Severity != "" {
		conds = append(conds, "toInt8(severity) >= ?")
		args = append(args, int8(f.Severity.Rank()))
	}
	if f.RuleID != "" {
		conds = append(conds, "rule_id = ?")
		args = append(args, f.RuleID)
	}
	if f.Tenant != "" {
		conds = append(conds, "tenant = ?")
		args = append(args, f.Tenant)
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	if f.Offset < 0 {
		f.Offset = 0
	}
	var total uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.t("incidents")+" FINAL "+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("cannot count incidents: %w", err)
	}
	incs, err := s.queryIncidents(ctx, where+" ORDER BY last_seen DESC, incident_id LIMIT ?, ?", append(args, f.Offset, f.Limit)...)
	return incs, total, err
}

const findingCols = `finding_id, tenant, ts, rule_id, rule_version, rule_title, rule_kind, severity, tags, group_key, summary,
 agent_id, user_id, session_key, server_name, tool_name, event_ids, evidence, incident_id, inserted_at,
 suppress_key, suppress_window, suppressed_count, last_event_id, last_seen, suppress_pos`

// InsertFindings appends findings with their incident_id (the Manager uses
// it when Config.InsertFindings is set: the analyzer stores findings before
// the sink sees them, so their first copy has no incident_id).
func (s *CHStore) InsertFindings(ctx context.Context, fs []event.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("findings")+" ("+findingCols+")")
	if err != nil {
		return fmt.Errorf("cannot prepare findings insert: %w", err)
	}
	defer b.Abort()
	// inserted_at is the ReplacingMergeTree version: one second ahead so
	// this copy (with incident_id) replaces a copy the analyzer stored a
	// moment earlier without it.
	now := time.Now().UTC().Add(time.Second)
	for _, f := range fs {
		tags, ids := f.Tags, f.EventIDs
		if tags == nil {
			tags = []string{}
		}
		if ids == nil {
			ids = []string{}
		}
		if err := b.Append(f.FindingID, f.Tenant, chTime(f.Time), f.RuleID, f.RuleVersion, f.RuleTitle, f.RuleKind,
			string(f.Severity), tags, f.GroupKey, f.Summary, f.AgentID, f.UserID, f.SessionKey, f.ServerName,
			f.ToolName, ids, f.Evidence, f.IncidentID, now, f.SuppressKey, uint32(f.SuppressWindow/time.Second),
			f.SuppressedCount, f.LastEventID, chTime(f.LastSeen), f.SuppressPos); err != nil {
			return fmt.Errorf("cannot append finding row: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert findings: %w", err)
	}
	return nil
}

// FindingsFor returns the findings of one incident, oldest first (at most
// limit), each once: the observations of one call share a finding id but not
// a time, so FINAL alone can leave two rows of it (the sort key holds ts).
func (s *CHStore) FindingsFor(ctx context.Context, incidentID string, limit int) ([]event.Finding, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+findingCols+" FROM "+s.t("findings")+
		" FINAL WHERE incident_id = ? ORDER BY ts, finding_id LIMIT 1 BY finding_id LIMIT ?", incidentID, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot query findings: %w", err)
	}
	defer rows.Close()
	out := []event.Finding{}
	for rows.Next() {
		var f event.Finding
		var sev string
		var inserted time.Time
		var win uint32
		if err := rows.Scan(&f.FindingID, &f.Tenant, &f.Time, &f.RuleID, &f.RuleVersion, &f.RuleTitle, &f.RuleKind, &sev,
			&f.Tags, &f.GroupKey, &f.Summary, &f.AgentID, &f.UserID, &f.SessionKey, &f.ServerName, &f.ToolName,
			&f.EventIDs, &f.Evidence, &f.IncidentID, &inserted, &f.SuppressKey, &win, &f.SuppressedCount,
			&f.LastEventID, &f.LastSeen, &f.SuppressPos); err != nil {
			return nil, fmt.Errorf("cannot scan finding: %w", err)
		}
		f.Severity, f.SuppressWindow = event.Severity(sev), time.Duration(win)*time.Second
		f.Time, f.LastSeen = f.Time.UTC(), fromCHTime(f.LastSeen)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read findings: %w", err)
	}
	return out, nil
}

// FindingIDs returns, per incident id, the ids of its stored findings (used
// at start so replayed findings are not counted twice).
func (s *CHStore) FindingIDs(ctx context.Context, incidentIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(incidentIDs) == 0 {
		return out, nil
	}
	rows, err := s.conn.Query(ctx, "SELECT incident_id, finding_id FROM "+s.t("findings")+
		" WHERE has(?, incident_id)", incidentIDs)
	if err != nil {
		return nil, fmt.Errorf("cannot query finding ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var inc, f string
		if err := rows.Scan(&inc, &f); err != nil {
			return nil, fmt.Errorf("cannot scan finding id: %w", err)
		}
		out[inc] = append(out[inc], f)
	}
	return out, rows.Err()
}

const actionCols = `action_id, ts, tenant, incident_id, kind, target, playbook, step, attempt, outcome, actor, detail, idempotency_key`

// InsertActions appends audit rows to `actions`.
func (s *CHStore) InsertActions(ctx context.Context, as []Action) error {
	if len(as) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("actions")+" ("+actionCols+")")
	if err != nil {
		return fmt.Errorf("cannot prepare actions insert: %w", err)
	}
	defer b.Abort()
	for _, a := range as {
		if err := b.Append(a.ActionID, chTime(a.Time), a.Tenant, a.IncidentID, string(a.Kind), a.Target, a.Playbook,
			a.Step, a.Attempt, a.Outcome, a.Actor, a.Detail, a.IdempotencyKey); err != nil {
			return fmt.Errorf("cannot append action row: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert actions: %w", err)
	}
	return nil
}

// ActionsFor returns the audit rows of one incident, oldest first.
func (s *CHStore) ActionsFor(ctx context.Context, incidentID string) ([]Action, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+actionCols+" FROM "+s.t("actions")+
		" WHERE incident_id = ? ORDER BY ts, action_id", incidentID)
	if err != nil {
		return nil, fmt.Errorf("cannot query actions: %w", err)
	}
	defer rows.Close()
	out := []Action{}
	for rows.Next() {
		var a Action
		var kind string
		if err := rows.Scan(&a.ActionID, &a.Time, &a.Tenant, &a.IncidentID, &kind, &a.Target, &a.Playbook, &a.Step,
			&a.Attempt, &a.Outcome, &a.Actor, &a.Detail, &a.IdempotencyKey); err != nil {
			return nil, fmt.Errorf("cannot scan action: %w", err)
		}
		a.Kind = ActionKind(kind)
		a.Time = a.Time.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
