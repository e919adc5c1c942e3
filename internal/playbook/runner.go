package playbook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
)

// Sender queues a notification (*notify.Notifier).
type Sender interface {
	Send(ctx context.Context, receiver string, inc incident.Incident, findings []event.Finding, note, source, key string) error
}

// Incidents reads and annotates incidents (*incident.Manager).
type Incidents interface {
	Get(ctx context.Context, id string) (incident.Incident, error)
	Annotate(ctx context.Context, id string, u incident.Update) (incident.Incident, error)
}

// Recorder stores audit rows (*incident.Manager).
type Recorder interface {
	RecordActions(ctx context.Context, as []incident.Action) error
}

// Run statuses.
const (
	RunRunning   = "running"
	RunWaiting   = "waiting_approval"
	RunCompleted = "completed"
	RunAborted   = "aborted"
	RunFailed    = "failed"
)

// Step statuses.
const (
	StepPending   = "pending"
	StepRunning   = "running"
	StepWaiting   = "waiting_approval"
	StepSucceeded = "succeeded"
	StepApproved  = "approved"
	StepDenied    = "denied"
	StepTimedOut  = "timed_out"
	StepFailed    = "failed"
)

// Run is a playbook run's persisted state (also the API's JSON).
type Run struct {
	RunID      string `json:"run_id"`
	Playbook   string `json:"playbook"`
	IncidentID string `json:"incident_id"`
	Tenant     string `json:"tenant"`
	// RuleID and GroupKey complete the incident's key (tenant, rule, group):
	// the owner of its findings partition drives the run.
	RuleID   string `json:"rule_id"`
	GroupKey string `json:"group_key"`
	// Version grows with every stored change (the writer's clock in ns, at
	// least the last version + 1).
	Version   uint64    `json:"version"`
	Status    string    `json:"status"`
	Steps     []StepRun `json:"steps"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StepRun is one step's state.
type StepRun struct {
	Name           string    `json:"step"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempt"`
	Output         string    `json:"output,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	Note           string    `json:"note,omitempty"`
	Prompt         string    `json:"prompt,omitempty"`
	IdempotencyKey string    `json:"idempotency_key"`
	StartedAt      time.Time `json:"started_at,omitzero"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
	Deadline       time.Time `json:"deadline,omitzero"`
}

func (r *Run) clone() Run {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	return c
}

func (r *Run) terminal() bool {
	return r.Status == RunCompleted || r.Status == RunAborted || r.Status == RunFailed
}

// Errors for the API (404 / 409).
var (
	ErrNotFound   = errors.New("playbook run or step not found")
	ErrNotWaiting = errors.New("step is not waiting for approval")
)

// Config configures a Runner. Store is required.
type Config struct {
	Playbooks []*Playbook
	// Store keeps run state (*CHStore: ClickHouse playbook_runs).
	Store     Store
	Notifier  Sender
	Incidents Incidents
	Recorder  Recorder
	// HTTPClient for http steps (default: a plain client; timeouts per step).
	HTTPClient *http.Client
	// PollInterval for approval deadlines, default 1s.
	PollInterval time.Duration
	// RetryBackoff between attempts of an http step, default 1s (doubling).
	RetryBackoff time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
	// Registerer receives the playbook metrics; nil = not registered.
	Registerer prometheus.Registerer
}

// Runner starts playbook runs on incident changes (incident.Listener) and
// drives the runs it holds: none until Reload, then the unfinished runs of
// the incidents it owns. Safe for concurrent use.
type Runner struct {
	cfg   Config
	log   *slog.Logger
	books map[string]*Playbook

	mu    sync.Mutex
	runs  map[string]*Run
	busy  map[string]bool
	again map[string]bool
	ctx   context.Context
	wg    sync.WaitGroup

	runsTotal  *prometheus.CounterVec
	stepsTotal *prometheus.CounterVec
}

// New returns a Runner that holds no run until Reload; call Run to drive them.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil {
		return nil, errors.New("cannot create playbook runner: a run store is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, books: map[string]*Playbook{}, runs: map[string]*Run{}, busy: map[string]bool{}, again: map[string]bool{}}
	for _, pb := range cfg.Playbooks {
		r.books[pb.Name] = pb
	}
	r.runsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_playbook_runs_total",
		Help: "Playbook runs by playbook and outcome (started, completed, aborted, failed)."}, []string{"playbook", "outcome"})
	r.stepsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcpwatch_playbook_steps_total",
		Help: "Playbook step and approval outcomes by playbook and step type."}, []string{"playbook", "type", "outcome"})
	if cfg.Registerer != nil {
		_ = cfg.Registerer.Register(r.runsTotal)
		_ = cfg.Registerer.Register(r.stepsTotal)
	}
	return r, nil
}

// Reload makes the Runner hold exactly the unfinished runs of the store
// whose incident key (tenant, rule, group key) owns accepts (nil owns keeps
// all), and drives them from their first unfinished step. The respond role
// calls it whenever its findings partitions change, after the incidents'
// reload: a run moves with its incident. A run it no longer holds is not
// advanced any further here (a step in progress ends, but its outcome is
// not stored: the new owner does the step again, with the same
// idempotency key).
func (r *Runner) Reload(ctx context.Context, owns func(tenant, rule, group string) bool) error {
	all, err := r.cfg.Store.LoadRuns(ctx)
	if err != nil {
		// Stop driving the runs of keys lost even so; the caller retries
		// the load for the keys gained.
		r.mu.Lock()
		for id, run := range r.runs {
			if owns != nil && !owns(run.Tenant, run.RuleID, run.GroupKey) {
				delete(r.runs, id)
			}
		}
		r.mu.Unlock()
		return fmt.Errorf("cannot load playbook runs: %w", err)
	}
	r.mu.Lock()
	runs := make(map[string]*Run, len(all))
	var ids []string
	for i := range all {
		run := &all[i]
		if owns != nil && !owns(run.Tenant, run.RuleID, run.GroupKey) {
			continue
		}
		if cur, ok := r.runs[run.RunID]; ok && cur.Version >= run.Version {
			run = cur // what this instance stored last (the same or newer)
		}
		runs[run.RunID] = run
		ids = append(ids, run.RunID)
	}
	r.runs = runs
	r.mu.Unlock()
	r.log.Info("playbook runs loaded", "unfinished", len(ids), "of", len(all))
	for _, id := range ids {
		r.kick(id)
	}
	return nil
}

// RunID is deterministic: one run per playbook and incident.
func RunID(playbook, incidentID string) string {
	h := sha256.Sum256([]byte(playbook + "\x00" + incidentID))
	return "run-" + hex.EncodeToString(h[:8])
}

// IncidentChanged starts the playbooks whose `when` matches a newly opened,
// reopened or escalated incident (at most one run per playbook and incident).
func (r *Runner) IncidentChanged(ctx context.Context, c incident.Change) {
	switch c.Kind {
	case incident.ChangeOpened, incident.ChangeReopened, incident.ChangeEscalated, incident.ChangeUnsuppressed:
	default:
		return
	}
	if c.Incident.Status == incident.StatusSuppressed || c.Incident.Status == incident.StatusResolved {
		return
	}
	for _, pb := range r.cfg.Playbooks {
		id := RunID(pb.Name, c.Incident.IncidentID)
		r.mu.Lock()
		_, exists := r.runs[id]
		r.mu.Unlock()
		if exists {
			continue
		}
		ok, err := pb.Matches(c.Incident)
		if err != nil {
			r.log.Warn("playbook condition failed", "playbook", pb.Name, "err", err)
			continue
		}
		if !ok {
			continue
		}
		if err := r.start(ctx, pb, c.Incident); err != nil {
			r.log.Error("cannot start playbook", "playbook", pb.Name, "incident_id", c.Incident.IncidentID, "err", err)
		}
	}
}

// start begins pb for inc; a run that already exists is left alone.
func (r *Runner) start(ctx context.Context, pb *Playbook, inc incident.Incident) error {
	now := r.cfg.Now().UTC()
	run := &Run{RunID: RunID(pb.Name, inc.IncidentID), Playbook: pb.Name, IncidentID: inc.IncidentID, Tenant: inc.Tenant,
		RuleID: inc.RuleID, GroupKey: inc.GroupKey, Status: RunRunning, CreatedAt: now, UpdatedAt: now}
	for _, s := range pb.Steps {
		run.Steps = append(run.Steps, StepRun{Name: s.Name, Type: s.Type(), Status: StepPending, IdempotencyKey: run.RunID + "/" + s.Name})
	}
	// A run of an earlier opening of the incident may be finished and no
	// longer held: the store knows.
	if _, err := r.cfg.Store.GetRun(ctx, run.RunID); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	r.mu.Lock()
	if _, exists := r.runs[run.RunID]; exists {
		r.mu.Unlock()
		return nil
	}
	if err := r.persist(run); err != nil {
		r.mu.Unlock()
		return err
	}
	r.runs[run.RunID] = run
	r.mu.Unlock()
	r.record(ctx, run, incident.Action{Kind: incident.ActionPlaybookRun, Target: pb.Name, Outcome: "started", Actor: "mcpwatch"})
	r.kick(run.RunID)
	return nil
}

// persist stores a new version of run (under r.mu, so versions of one run
// are written in order).
func (r *Runner) persist(run *Run) error {
	run.Version = max(run.Version+1, uint64(r.cfg.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.cfg.Store.SaveRun(ctx, *run); err != nil {
		return fmt.Errorf("cannot store playbook run: %w", err)
	}
	return nil
}

// update applies fn to a copy of the run and stores it; the run changes
// only once stored. ErrNotFound when the run is not held (any more).
func (r *Runner) update(id string, fn func(*Run)) (Run, error) {
	return r.updateIf(id, func(run *Run) error { fn(run); return nil })
}

// updateIf is update, but an error of fn leaves the run as it is (nothing
// stored) and is returned.
func (r *Runner) updateIf(id string, fn func(*Run) error) (Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok := r.runs[id]
	if !ok {
		return Run{}, ErrNotFound
	}
	c := run.clone()
	if err := fn(&c); err != nil {
		return Run{}, err
	}
	c.UpdatedAt = r.cfg.Now().UTC()
	if err := r.persist(&c); err != nil {
		r.log.Warn("cannot store playbook run", "run_id", id, "err", err)
		return Run{}, err
	}
	*run = c
	return c.clone(), nil
}

// kick makes sure a goroutine advances the run; a kick while one is already
// at work makes it look again when it is done (so an approval that lands
// while the step is being set to waiting is never lost).
func (r *Runner) kick(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.ctx.Err() != nil {
		return // not running (yet, or any more): Run resumes the run at start
	}
	if r.busy[id] {
		r.again[id] = true
		return
	}
	r.busy[id] = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			r.advance(r.ctx, id)
			r.mu.Lock()
			if r.again[id] && r.ctx.Err() == nil {
				delete(r.again, id)
				r.mu.Unlock()
				continue
			}
			delete(r.busy, id)
			delete(r.again, id)
			r.mu.Unlock()
			return
		}
	}()
}

// Run drives the runs held (each from its first unfinished step) until ctx
// ends, then waits for steps in progress. Every PollInterval it looks again
// at runs whose approval deadline passed and at running runs nobody is
// advancing (a store or incident read failed: retried).
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	r.ctx = ctx
	var ids []string
	for id, run := range r.runs {
		if !run.terminal() {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.kick(id)
	}
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return nil
		case <-t.C:
			now := r.cfg.Now()
			r.mu.Lock()
			var due []string
			for id, run := range r.runs {
				switch {
				case run.Status == RunRunning && !r.busy[id]:
					due = append(due, id)
				case run.Status == RunWaiting:
					for _, s := range run.Steps {
						if s.Status == StepWaiting && !now.Before(s.Deadline) {
							due = append(due, id)
						}
					}
				}
			}
			r.mu.Unlock()
			for _, id := range due {
				r.kick(id)
			}
		}
	}
}

// advance executes steps until the run waits or ends.
func (r *Runner) advance(ctx context.Context, id string) {
	for ctx.Err() == nil {
		r.mu.Lock()
		run, ok := r.runs[id]
		if !ok || run.terminal() {
			r.mu.Unlock()
			return
		}
		pb := r.books[run.Playbook]
		idx := -1
		for i, s := range run.Steps {
			if s.Status != StepSucceeded && s.Status != StepApproved && s.Status != StepTimedOut {
				idx = i
				break
			}
		}
		snapshot := run.clone()
		r.mu.Unlock()
		if pb == nil {
			r.finish(ctx, id, RunFailed, "playbook no longer loaded")
			return
		}
		if idx < 0 {
			r.finish(ctx, id, RunCompleted, "")
			return
		}
		st := snapshot.Steps[idx]
		if !r.step(ctx, pb, &pb.Steps[idx], snapshot, st) {
			return
		}
	}
}

func (r *Runner) finish(ctx context.Context, id, status, detail string) {
	run, err := r.update(id, func(run *Run) { run.Status = status })
	if err != nil {
		r.log.Error("cannot finish playbook run", "run_id", id, "err", err)
		return
	}
	r.record(ctx, &run, incident.Action{Kind: incident.ActionPlaybookRun, Target: run.Playbook, Outcome: status, Actor: "mcpwatch", Detail: detail})
}

// step executes one step; false stops advancing (waiting or ended).
func (r *Runner) step(ctx context.Context, pb *Playbook, s *Step, run Run, st StepRun) bool {
	inc, err := r.incident(ctx, run)
	if err != nil {
		r.log.Warn("cannot read incident for playbook", "run_id", run.RunID, "err", err)
		return false
	}
	data := map[string]any{"incident": IncidentVars(inc), "run_id": run.RunID, "playbook": run.Playbook, "step": s.Name}
	setStep := func(fn func(*StepRun)) (Run, error) {
		return r.update(run.RunID, func(rr *Run) {
			for i := range rr.Steps {
				if rr.Steps[i].Name == s.Name {
					fn(&rr.Steps[i])
				}
			}
		})
	}
	now := r.cfg.Now().UTC()
	switch {
	case s.Approval != nil:
		switch st.Status {
		case StepPending, StepRunning:
			prompt, _ := render(s.tmpls["prompt"], data)
			// Step and run status change in one update: an approval can
			// arrive as soon as the step is waiting.
			updated, err := r.update(run.RunID, func(rr *Run) {
				for i := range rr.Steps {
					if x := &rr.Steps[i]; x.Name == s.Name {
						x.Status, x.StartedAt, x.Deadline, x.Prompt = StepWaiting, now, now.Add(s.Approval.Timeout), prompt
					}
				}
				rr.Status = RunWaiting
			})
			if err != nil {
				return false
			}
			r.record(ctx, &updated, incident.Action{Kind: incident.ActionApproval, Target: run.Playbook, Step: s.Name,
				Outcome: "requested", Actor: "mcpwatch", Detail: prompt, IdempotencyKey: st.IdempotencyKey})
			return false
		case StepWaiting:
			if now.Before(st.Deadline) {
				return false
			}
			updated, err := setStep(func(x *StepRun) { x.Status, x.FinishedAt = StepTimedOut, now })
			if err != nil {
				return false
			}
			r.record(ctx, &updated, incident.Action{Kind: incident.ActionApproval, Target: run.Playbook, Step: s.Name,
				Outcome: "timed_out", Actor: "mcpwatch", Detail: "on_timeout: " + s.Approval.OnTimeout, IdempotencyKey: st.IdempotencyKey})
			if s.Approval.OnTimeout == "abort" {
				r.finish(ctx, run.RunID, RunAborted, "approval "+s.Name+" timed out")
				return false
			}
			_, _ = r.update(run.RunID, func(rr *Run) { rr.Status = RunRunning })
			return true
		case StepDenied:
			r.finish(ctx, run.RunID, RunAborted, "approval "+s.Name+" denied by "+st.Actor)
			return false
		}
		return false
	case s.Notify != nil:
		note, err := render(s.tmpls["note"], data)
		if err == nil {
			err = r.cfg.Notifier.Send(ctx, s.Notify.Receiver, inc, nil, note, "playbook:"+run.Playbook, st.IdempotencyKey)
		}
		return r.stepDone(ctx, run, s, st, setStep, err, "queued for "+s.Notify.Receiver)
	case s.Annotate != nil:
		note, err := render(s.tmpls["note"], data)
		if err == nil {
			_, err = r.cfg.Incidents.Annotate(ctx, run.IncidentID, incident.Update{Actor: "playbook:" + run.Playbook, Note: note})
		}
		return r.stepDone(ctx, run, s, st, setStep, err, note)
	case s.HTTP != nil:
		var out string
		var err error
		backoff := r.cfg.RetryBackoff
		for attempt := 0; attempt <= s.HTTP.Retries; attempt++ {
			updated, uerr := setStep(func(x *StepRun) {
				x.Status, x.Attempts = StepRunning, x.Attempts+1
				if x.StartedAt.IsZero() {
					x.StartedAt = now
				}
			})
			if uerr != nil {
				return false
			}
			out, err = r.doHTTP(ctx, s, data, st.IdempotencyKey)
			if err == nil || ctx.Err() != nil {
				break
			}
			var cur StepRun
			for _, x := range updated.Steps {
				if x.Name == s.Name {
					cur = x
				}
			}
			r.record(ctx, &updated, incident.Action{Kind: incident.ActionPlaybookStep, Target: run.Playbook, Step: s.Name,
				Attempt: uint32(cur.Attempts), Outcome: "retry", Actor: "mcpwatch", Detail: err.Error(), IdempotencyKey: st.IdempotencyKey})
			if attempt < s.HTTP.Retries {
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff *= 2
			}
		}
		if ctx.Err() != nil {
			return false // resumes after restart with the same Idempotency-Key
		}
		if err == nil {
			err2 := error(nil)
			return r.stepDone(ctx, run, s, st, setStep, err2, out)
		}
		return r.stepDone(ctx, run, s, st, setStep, err, out)
	}
	return false
}

func (r *Runner) stepDone(ctx context.Context, run Run, s *Step, st StepRun, setStep func(func(*StepRun)) (Run, error), err error, output string) bool {
	now := r.cfg.Now().UTC()
	status, outcome, detail := StepSucceeded, "succeeded", output
	if err != nil {
		status, outcome, detail = StepFailed, "failed", err.Error()
	}
	updated, uerr := setStep(func(x *StepRun) {
		x.Status, x.FinishedAt, x.Output = status, now, truncate(detail, 1000)
		if x.Attempts == 0 {
			x.Attempts = 1
		}
		if x.StartedAt.IsZero() {
			x.StartedAt = now
		}
	})
	if uerr != nil {
		return false
	}
	var cur StepRun
	for _, x := range updated.Steps {
		if x.Name == s.Name {
			cur = x
		}
	}
	r.record(ctx, &updated, incident.Action{Kind: incident.ActionPlaybookStep, Target: run.Playbook, Step: s.Name,
		Attempt: uint32(cur.Attempts), Outcome: outcome, Actor: "playbook:" + run.Playbook, Detail: truncate(detail, 2000), IdempotencyKey: st.IdempotencyKey})
	if err != nil {
		r.finish(ctx, run.RunID, RunFailed, "step "+s.Name+": "+err.Error())
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (r *Runner) incident(ctx context.Context, run Run) (incident.Incident, error) {
	if r.cfg.Incidents == nil {
		return incident.Incident{IncidentID: run.IncidentID, Tenant: run.Tenant}, nil
	}
	return r.cfg.Incidents.Get(ctx, run.IncidentID)
}

func (r *Runner) doHTTP(ctx context.Context, s *Step, data map[string]any, key string) (string, error) {
	h := s.HTTP
	method, err := render(s.tmpls["method"], data)
	if err != nil {
		return "", err
	}
	url, err := render(s.tmpls["url"], data)
	if err != nil {
		return "", err
	}
	body, err := render(s.tmpls["body"], data)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, strings.TrimSpace(method), strings.TrimSpace(url), bytes.NewReader([]byte(body)))
	if err != nil {
		return "", fmt.Errorf("cannot build http step request: %w", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k := range h.Headers {
		v, err := render(s.tmpls["header:"+k], data)
		if err != nil {
			return "", err
		}
		req.Header.Set(k, v)
	}
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("User-Agent", "mcpwatch-playbook/1")
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		// The URL may carry a secret: report only the cause.
		return "", fmt.Errorf("cannot send %s request: %v", req.Method, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	out := fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(rb)))
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if len(h.ExpectStatus) > 0 {
		ok = slices.Contains(h.ExpectStatus, resp.StatusCode)
	}
	if !ok {
		return out, fmt.Errorf("unexpected %s", out)
	}
	return out, nil
}

// Decide approves (approve=true) or denies a step that waits for approval.
func (r *Runner) Decide(ctx context.Context, incidentID, runID, step, actor, note string, approve bool) (Run, error) {
	now := r.cfg.Now().UTC()
	held := false
	run, err := r.updateIf(runID, func(rr *Run) error {
		held = true
		if rr.IncidentID != incidentID {
			return ErrNotFound
		}
		for i := range rr.Steps {
			if rr.Steps[i].Name != step {
				continue
			}
			x := &rr.Steps[i]
			if x.Status != StepWaiting {
				return fmt.Errorf("%w (status %s)", ErrNotWaiting, x.Status)
			}
			x.Status, x.Actor, x.Note, x.FinishedAt = StepApproved, actor, note, now
			if !approve {
				x.Status = StepDenied
			}
			rr.Status = RunRunning
			return nil
		}
		return ErrNotFound
	})
	if errors.Is(err, ErrNotFound) && !held {
		// Not held: a finished run is stored, but no step of it waits.
		if st, serr := r.cfg.Store.GetRun(ctx, runID); serr == nil && st.IncidentID == incidentID && st.terminal() {
			return Run{}, fmt.Errorf("%w (run %s)", ErrNotWaiting, st.Status)
		}
	}
	if err != nil {
		return Run{}, err
	}
	outcome := "approved"
	if !approve {
		outcome = "denied"
	}
	r.record(ctx, &run, incident.Action{Kind: incident.ActionApproval, Target: run.Playbook, Step: step, Outcome: outcome,
		Actor: actor, Detail: note, IdempotencyKey: runID + "/" + step})
	r.kick(runID)
	return run, nil
}

// Runs returns the runs of an incident, oldest first, as stored (every
// change is stored before it is made in memory, so the store is as new as
// the owner's memory, and it has the runs this instance does not hold).
func (r *Runner) Runs(ctx context.Context, incidentID string) ([]Run, error) {
	return r.cfg.Store.RunsOf(ctx, incidentID)
}

// Get returns one run this instance holds.
func (r *Runner) Get(runID string) (Run, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok := r.runs[runID]
	if !ok {
		return Run{}, false
	}
	return run.clone(), true
}

func (r *Runner) record(ctx context.Context, run *Run, a incident.Action) {
	switch a.Kind {
	case incident.ActionPlaybookRun:
		r.runsTotal.WithLabelValues(run.Playbook, a.Outcome).Inc()
	case incident.ActionPlaybookStep:
		typ := ""
		for _, st := range run.Steps {
			if st.Name == a.Step {
				typ = st.Type
			}
		}
		r.stepsTotal.WithLabelValues(run.Playbook, typ, a.Outcome).Inc()
	case incident.ActionApproval:
		r.stepsTotal.WithLabelValues(run.Playbook, "approval", a.Outcome).Inc()
	}
	if r.cfg.Recorder == nil {
		return
	}
	a.ActionID = incident.NewID()
	a.Time = r.cfg.Now().UTC()
	a.Tenant = run.Tenant
	a.IncidentID = run.IncidentID
	a.Playbook = run.Playbook
	if err := r.cfg.Recorder.RecordActions(context.WithoutCancel(ctx), []incident.Action{a}); err != nil {
		r.log.Warn("cannot record playbook action", "run_id", run.RunID, "err", err)
	}
}
