// Package incident groups findings into incidents (docs/architecture.md): a finding
// joins the open incident with the same (tenant, rule id, group key) within
// the rule's dedup window, else opens one. Every change is a new version row
// in ClickHouse `incidents`; the Manager keeps the active incidents in memory
// and reloads them from ClickHouse at start.
package incident

import (
	"errors"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Status is an incident's lifecycle state.
type Status string

const (
	StatusOpen         Status = "open"
	StatusAcknowledged Status = "acknowledged"
	StatusResolved     Status = "resolved"
	StatusSuppressed   Status = "suppressed"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusOpen, StatusAcknowledged, StatusResolved, StatusSuppressed:
		return true
	}
	return false
}

// Incident is one version of an incident; field names and `ch` tags are the
// ClickHouse `incidents` columns, JSON names are the same (the API contract).
type Incident struct {
	IncidentID      string         `ch:"incident_id" json:"incident_id"`
	Version         uint64         `ch:"version" json:"version"`
	Tenant          string         `ch:"tenant" json:"tenant"`
	RuleID          string         `ch:"rule_id" json:"rule_id"`
	RuleTitle       string         `ch:"rule_title" json:"rule_title"`
	GroupKey        string         `ch:"group_key" json:"group_key"`
	Title           string         `ch:"title" json:"title"`
	Summary         string         `ch:"summary" json:"summary"`
	Status          Status         `ch:"status" json:"status"`
	Severity        event.Severity `ch:"severity" json:"severity"`
	Tags            []string       `ch:"tags" json:"tags"`
	FindingCount    uint32         `ch:"finding_count" json:"finding_count"`
	FirstSeen       time.Time      `ch:"first_seen" json:"first_seen"`
	LastSeen        time.Time      `ch:"last_seen" json:"last_seen"`
	AgentID         string         `ch:"agent_id" json:"agent_id"`
	UserID          string         `ch:"user_id" json:"user_id"`
	SessionKey      string         `ch:"session_key" json:"session_key"`
	ServerName      string         `ch:"server_name" json:"server_name"`
	ToolName        string         `ch:"tool_name" json:"tool_name"`
	Assignee        string         `ch:"assignee" json:"assignee"`
	SuppressedUntil time.Time      `ch:"suppressed_until" json:"suppressed_until"`
	UpdatedBy       string         `ch:"updated_by" json:"updated_by"`
	Note            string         `ch:"note" json:"note"`
	CreatedAt       time.Time      `ch:"created_at" json:"created_at"`
	UpdatedAt       time.Time      `ch:"updated_at" json:"updated_at"`
}

// Active reports whether findings can still join the incident without a reopen.
func (i *Incident) Active() bool { return i.Status != StatusResolved }

// clone returns a deep copy (Tags is the only reference field).
func (i Incident) clone() Incident {
	i.Tags = append([]string{}, i.Tags...) // never nil: JSON [] not null
	return i
}

// ActionKind is the `actions.kind` enum.
type ActionKind string

const (
	ActionNotification   ActionKind = "notification"
	ActionPlaybookStep   ActionKind = "playbook_step"
	ActionApproval       ActionKind = "approval"
	ActionIncidentChange ActionKind = "incident_change"
	ActionPlaybookRun    ActionKind = "playbook_run"
)

// Action is one row of the `actions` audit log: a delivery attempt, a
// playbook step, an approval or an incident change.
type Action struct {
	ActionID       string     `ch:"action_id" json:"action_id"`
	Time           time.Time  `ch:"ts" json:"ts"`
	Tenant         string     `ch:"tenant" json:"tenant"`
	IncidentID     string     `ch:"incident_id" json:"incident_id"`
	Kind           ActionKind `ch:"kind" json:"kind"`
	Target         string     `ch:"target" json:"target"`
	Playbook       string     `ch:"playbook" json:"playbook"`
	Step           string     `ch:"step" json:"step"`
	Attempt        uint32     `ch:"attempt" json:"attempt"`
	Outcome        string     `ch:"outcome" json:"outcome"`
	Actor          string     `ch:"actor" json:"actor"`
	Detail         string     `ch:"detail" json:"detail"`
	IdempotencyKey string     `ch:"idempotency_key" json:"idempotency_key"`
}

// ChangeKind says why an incident got a new version.
type ChangeKind string

const (
	ChangeOpened       ChangeKind = "opened"
	ChangeUpdated      ChangeKind = "updated"   // findings joined, severity unchanged
	ChangeEscalated    ChangeKind = "escalated" // findings joined, severity rose
	ChangeReopened     ChangeKind = "reopened"
	ChangeAcknowledged ChangeKind = "acknowledged"
	ChangeResolved     ChangeKind = "resolved"
	ChangeSuppressed   ChangeKind = "suppressed"
	ChangeUnsuppressed ChangeKind = "unsuppressed" // suppression expired
	ChangeAssigned     ChangeKind = "assigned"
	ChangeAnnotated    ChangeKind = "annotated"
)

// Change is passed to listeners (notifiers, playbooks) after the new
// version is stored.
type Change struct {
	Kind     ChangeKind
	Incident Incident        // the new version
	Previous *Incident       // nil when opened
	Findings []event.Finding // findings that caused the change (may be empty)
}

// Errors returned by the Manager's lifecycle methods; the API maps them to
// 404 and 409.
var (
	ErrNotFound          = errors.New("incident not found")
	ErrIllegalTransition = errors.New("illegal incident transition")
)
