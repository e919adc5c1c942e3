package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
)

// HeaderCommand marks a record of the findings topic that carries a
// person's change to an incident or decision on a playbook approval
// (value: commandValue as JSON) instead of findings. Its value is the
// incident change kind, or cmdApprove / cmdDeny.
const HeaderCommand = "mcpwatch-command"

// The command kinds of a playbook approval step's decision.
const (
	cmdApprove = "playbook_approve"
	cmdDeny    = "playbook_deny"
)

type commandValue struct {
	IncidentID string    `json:"incident_id"`
	Actor      string    `json:"actor"`
	Note       string    `json:"note,omitempty"`
	Assignee   string    `json:"assignee,omitempty"`
	Until      time.Time `json:"until,omitzero"`
	// RunID and Step name the approval step of a decision.
	RunID string `json:"run_id,omitempty"`
	Step  string `json:"step,omitempty"`
}

// command is a decoded command record.
type command struct {
	Kind       string
	IncidentID string
	Update     incident.Update
	RunID      string
	Step       string
}

// IncidentRouter serves the API's incident changes and playbook approvals
// with one writer per incident. A change to an incident this instance owns
// is made here; any other is checked against the stored incident (or run),
// sent to its owner through the findings topic (keyed like the incident's
// findings, so it reaches the owner's partition in order with them) and
// confirmed by reading the new version back. Until the respond role runs,
// every change is sent.
type IncidentRouter struct {
	Manager *incident.Manager
	Store   interface {
		GetIncident(ctx context.Context, id string) (incident.Incident, error)
	}
	// Runner drives the runs of the incidents this instance owns and
	// RunStore is their store; both nil = no playbooks (Decide answers not found).
	Runner   *playbook.Runner
	RunStore playbook.Store
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
	var got incident.Incident
	err = r.forward(ctx, send, key, string(kind), commandValue{IncidentID: id, Actor: u.Actor, Note: u.Note, Assignee: u.Assignee, Until: u.Until},
		func(ctx context.Context) (bool, error) {
			var err error
			got, err = r.Store.GetIncident(ctx, id)
			return err == nil && got.Version > cur.Version, nil
		})
	switch {
	case errors.Is(err, errUnconfirmed):
		return incident.Incident{}, fmt.Errorf("cannot confirm the change: the incident's owner has not stored it within %s (it will still be applied)", r.confirmWait())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return incident.Incident{}, err
	case err != nil:
		return incident.Incident{}, fmt.Errorf("cannot send the change to the incident's owner: %w", err)
	}
	return got, nil
}

// errUnconfirmed: the owner did not store a forwarded command within the
// router's Confirm.
var errUnconfirmed = errors.New("not confirmed")

func (r *IncidentRouter) confirmWait() time.Duration {
	if r.Confirm <= 0 {
		return 15 * time.Second
	}
	return r.Confirm
}

// forward sends a command to the owner of key (a record on the findings
// topic, which its respond role applies), then asks confirmed every 100 ms
// whether the owner stored it, until it answers true or an error, or
// confirmWait passes (errUnconfirmed).
func (r *IncidentRouter) forward(ctx context.Context, send func(context.Context, *kgo.Record) error, key []byte, kind string, cmd commandValue,
	confirmed func(context.Context) (bool, error)) error {
	v, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if err := send(ctx, &kgo.Record{Key: key, Value: v, Headers: []kgo.RecordHeader{{Key: HeaderCommand, Value: []byte(kind)}}}); err != nil {
		return err
	}
	deadline := time.Now().Add(r.confirmWait())
	for {
		if done, err := confirmed(ctx); done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errUnconfirmed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// decodeCommand reads a command record.
func decodeCommand(r *kgo.Record) (c command, ok bool, err error) {
	for _, h := range r.Headers {
		if h.Key == HeaderCommand {
			c.Kind, ok = string(h.Value), true
		}
	}
	if !ok {
		return c, false, nil
	}
	var v commandValue
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return c, true, fmt.Errorf("bad incident command: %w", err)
	}
	c.IncidentID, c.RunID, c.Step = v.IncidentID, v.RunID, v.Step
	c.Update = incident.Update{Actor: v.Actor, Note: v.Note, Assignee: v.Assignee, Until: v.Until}
	return c, true, nil
}

// Runs returns an incident's playbook runs as stored.
func (r *IncidentRouter) Runs(ctx context.Context, incidentID string) ([]playbook.Run, error) {
	if r.RunStore == nil {
		return []playbook.Run{}, nil
	}
	return r.RunStore.RunsOf(ctx, incidentID)
}

// Decide approves or denies a playbook step that waits for approval. The
// owner of the run's incident decides here; another instance checks the
// stored run, sends the decision to the owner as a command record and
// answers with the run once the owner stored it (the step no longer
// waiting): the decision made, or ErrNotWaiting when the step timed out or
// was decided otherwise first.
func (r *IncidentRouter) Decide(ctx context.Context, incidentID, runID, step, actor, note string, approve bool) (playbook.Run, error) {
	if r.Runner == nil || r.RunStore == nil {
		return playbook.Run{}, playbook.ErrNotFound
	}
	cur, err := r.RunStore.GetRun(ctx, runID)
	if err != nil {
		return playbook.Run{}, err
	}
	if cur.IncidentID != incidentID {
		return playbook.Run{}, playbook.ErrNotFound
	}
	key := FindingKey(cur.Tenant, cur.RuleID, cur.GroupKey)
	owns, send := r.route()
	if send == nil || (owns != nil && owns(key)) {
		return r.Runner.Decide(ctx, incidentID, runID, step, actor, note, approve)
	}
	if err := waiting(cur, step); err != nil {
		return playbook.Run{}, err
	}
	kind := cmdApprove
	if !approve {
		kind = cmdDeny
	}
	var got playbook.Run
	err = r.forward(ctx, send, key, kind, commandValue{IncidentID: incidentID, Actor: actor, Note: note, RunID: runID, Step: step},
		func(ctx context.Context) (bool, error) {
			var err error
			got, err = r.RunStore.GetRun(ctx, runID)
			if err != nil || got.Version <= cur.Version || waiting(got, step) == nil {
				return false, nil
			}
			for _, st := range got.Steps {
				if st.Name != step {
					continue
				}
				want := playbook.StepDenied
				if approve {
					want = playbook.StepApproved
				}
				if st.Status == want && st.Actor == actor {
					return true, nil
				}
				return false, fmt.Errorf("%w (status %s by %q first)", playbook.ErrNotWaiting, st.Status, st.Actor)
			}
			return false, nil
		})
	switch {
	case errors.Is(err, errUnconfirmed):
		return playbook.Run{}, fmt.Errorf("cannot confirm the decision: the run's owner has not stored it within %s (it is applied if the step still waits when the owner gets it)", r.confirmWait())
	case errors.Is(err, playbook.ErrNotWaiting), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return playbook.Run{}, err
	case err != nil:
		return playbook.Run{}, fmt.Errorf("cannot send the decision to the run's owner: %w", err)
	}
	return got, nil
}

// waiting is nil when the run's step waits for approval.
func waiting(run playbook.Run, step string) error {
	for _, st := range run.Steps {
		if st.Name == step {
			if st.Status != playbook.StepWaiting {
				return fmt.Errorf("%w (status %s)", playbook.ErrNotWaiting, st.Status)
			}
			return nil
		}
	}
	return playbook.ErrNotFound
}
