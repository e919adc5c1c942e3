package event

import "time"

// Severity of a rule, finding or incident, ordered from info to critical.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

var severityRank = map[Severity]int{
	SeverityInfo: 1, SeverityLow: 2, SeverityMedium: 3, SeverityHigh: 4, SeverityCritical: 5,
}

// Rank orders severities; unknown severities rank 0.
func (s Severity) Rank() int { return severityRank[s] }

// Valid reports whether s is one of the five known severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Finding is one detection hit (docs/architecture.md): produced by internal/detect,
// stored in ClickHouse `findings`, grouped into incidents by internal/incident.
type Finding struct {
	FindingID   string    `ch:"finding_id"` // deterministic: rule id + version + group key + event ids
	Tenant      string    `ch:"tenant"`
	Time        time.Time `ch:"ts"` // time of the last event that completed the finding
	RuleID      string    `ch:"rule_id"`
	RuleVersion string    `ch:"rule_version"` // hash of the rule file
	RuleTitle   string    `ch:"rule_title"`
	RuleKind    string    `ch:"rule_kind"`
	Severity    Severity  `ch:"severity"`
	Tags        []string  `ch:"tags"`
	GroupKey    string    `ch:"group_key"` // the rule's `by` values joined, e.g. "acme|sess-1"
	Summary     string    `ch:"summary"`

	// Entity fields copied from the triggering event for search and routing.
	AgentID    string `ch:"agent_id"`
	UserID     string `ch:"user_id"`
	SessionKey string `ch:"session_key"`
	ServerName string `ch:"server_name"`
	ToolName   string `ch:"tool_name"`

	EventIDs   []string `ch:"event_ids"`
	Evidence   string   `ch:"evidence"` // JSON object
	IncidentID string   `ch:"incident_id"`

	// Suppression (match rules, docs/rules.md "suppress"): the findings of
	// one (tenant, rule, group, SuppressKey) within one SuppressWindow are
	// stored as the first of them, counting the others. The first event is
	// the finding's own (Time, EventIDs); Last* is the latest suppressed one.
	SuppressKey     string        `ch:"suppress_key"` // the rule's suppress.by values joined; "" = not suppressed
	SuppressWindow  time.Duration `ch:"-"`
	SuppressedCount uint32        `ch:"suppressed_count"`
	LastEventID     string        `ch:"last_event_id"`
	LastSeen        time.Time     `ch:"last_seen"`
	// SuppressPos is where the event of the last finding counted was on
	// the events topic (partition<<40 | offset+1; 0 = unknown): the
	// respond role's watermark, so a replayed finding is not counted twice.
	SuppressPos int64 `ch:"suppress_pos"`
}
