package analyzer

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/incident"
)

// HeaderCommand marks a record of the findings topic that carries a
// person's change to an incident (value: commandValue as JSON) instead of
// findings.
const HeaderCommand = "mcpwatch-command"

type commandValue struct {
	IncidentID string    `json:"incident_id"`
	Actor      string    `json:"actor"`
	Note       string    `json:"note,omitempty"`
	Assignee   string    `json:"assignee,omitempty"`
	Until      time.Time `json:"until,omitzero"`
}

// IncidentRouter serves the API's incident changes with one writer per
// incident. A change to an incident this instance owns is made here; any
// other is checked against the stored incident, sent to its owner through
// the findings topic (keyed like the incident's findings, so it reaches the
// owner's partition in order with them) and confirmed by reading the new
// version back. Until the respond role runs, every change is sent.
type IncidentRouter struct {
	Manager *incident.Manager
	Store   interface {
		GetIncident(ctx context.Context, id string) (incident.Incident, error)
	}
	// Confirm bounds the wait for the owner's new version. Default 15s.
	Confirm time.Duration

	mu   sync.Mutex
	owns func(key []byte) bool
	send func(ctx context.Context, r *kgo.Record) error
}

// bind connects the router to the respond role's ownership and producer.
func (r *IncidentRouter) bind(owns func([]byte) bool, send func(context.Context, *kgo.Record) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owns, r.send = owns, send
}

// Get returns an incident's current version: the owner's memory, else the
// store (another instance's memory of it may be stale).
func (r *IncidentRouter) Get(ctx context.Context, id string) (incident.Incident, error) {
	inc, err := r.Manager.Get(ctx, id)
	if err != nil {
		return inc, err
	}
	if owns, send := r.route(); send == nil || (owns != nil && owns(FindingKey(inc.Tenant, inc.RuleID, inc.GroupKey))) {
		return inc, nil
	}
	return r.Store.GetIncident(ctx, id)
}

func (r *IncidentRouter) route() (func([]byte) bool, func(context.Context, *kgo.Record) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owns, r.send
}

// Acknowledge, Resolve, Suppress and Assign implement the API's Incidents.
func (r *IncidentRouter) Acknowledge(ctx context.Context, id string, u incident.Update) (incident.Incident, error) {
	return r.apply(ctx, id, incident.ChangeAcknowledged, u)
}

func (r *IncidentRouter) Resolve(ctx context.Context, id string, u incident.Update) (incident.Incident, error) {
	return r.apply(ctx, id, incident.ChangeResolved, u)
}

func (r *IncidentRouter) Suppress(ctx context.Context, id string, u incident.Update) (incident.Incident, error) {
	return r.apply(ctx, id, incident.ChangeSuppressed, u)
}

func (r *IncidentRouter) Assign(ctx context.Context, id string, u incident.Update) (incident.Incident, error) {
	return r.apply(ctx, id, incident.ChangeAssigned, u)
}

func (r *IncidentRouter) apply(ctx context.Context, id string, kind incident.ChangeKind, u incident.Update) (incident.Incident, error) {
	cur, err := r.Manager.Get(ctx, id)
	if err != nil {
		return incident.Incident{}, err
	}
	key := FindingKey(cur.Tenant, cur.RuleID, cur.GroupKey)
	owns, send := r.route()
	if send == nil || (owns != nil && owns(key)) {
		return r.Manager.Apply(ctx, id, kind, u)
	}
	if cur, err = r.Store.GetIncident(ctx, id); err != nil {
		return incident.Incident{}, err
	}
	if err := incident.Check(cur, kind, u, time.Now()); err != nil {
		return incident.Incident{}, err
	}
	v, err := json.Marshal(commandValue{IncidentID: id, Actor: u.Actor, Note: u.Note, Assignee: u.Assignee, Until: u.Until})
	if err != nil {
		return incident.Incident{}, err
	}
	rec := &kgo.Record{Key: key, Value: v, Headers: []kgo.RecordHeader{{Key: HeaderCommand, Value: []byte(kind)}}}
	if err := send(ctx, rec); err != nil {
		return incident.Incident{}, fmt.Errorf("cannot send the change to the incident's owner: %w", err)
	}
	wait := r.Confirm
	if wait <= 0 {
		wait = 15 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		got, err := r.Store.GetIncident(ctx, id)
		if err == nil && got.Version > cur.Version {
			return got, nil
		}
		if time.Now().After(deadline) {
			return incident.Incident{}, fmt.Errorf("cannot confirm the change: the incident's owner has not stored it within %s (it will still be applied)", wait)
		}
		select {
		case <-ctx.Done():
			return incident.Incident{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// decodeCommand reads a command record.
func decodeCommand(r *kgo.Record) (kind incident.ChangeKind, id string, u incident.Update, ok bool, err error) {
	for _, h := range r.Headers {
		if h.Key == HeaderCommand {
			kind, ok = incident.ChangeKind(h.Value), true
		}
	}
	if !ok {
		return "", "", u, false, nil
	}
	var c commandValue
	if err := json.Unmarshal(r.Value, &c); err != nil {
		return kind, "", u, true, fmt.Errorf("bad incident command: %w", err)
	}
	return kind, c.IncidentID, incident.Update{Actor: c.Actor, Note: c.Note, Assignee: c.Assignee, Until: c.Until}, true, nil
}
