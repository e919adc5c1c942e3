// Package backtest is the retro-hunt: it replays stored events from
// ClickHouse, in time order, through the detection engine with a new or
// changed rule and with the deployed version of the same rule, and reports
// both sides' findings and their difference (docs/rules.md, "Backtest").
//
// Nothing is notified and no live state is touched: each side runs in a
// fresh engine with in-memory state only (no detection_baselines, no
// changelog, no findings written), so stateful kinds (threshold, new_term,
// sequence) start empty at the beginning of the window and learn from it.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// Source streams stored events in time order (*store.Store).
type Source interface {
	StreamEvents(ctx context.Context, r store.EventRange, fn func([]event.Event) error) error
}

// Request is one backtest.
type Request struct {
	// Rule is the rule to try (new or changed). Required.
	Rule *detect.Rule
	// Deployed is the version of the rule in the configured pack (same id);
	// nil when the rule is new: every finding is then only_new.
	Deployed *detect.Rule
	// Lists are the pack's named lists the rules were compiled with.
	Lists map[string][]string
	// Tenant restricts the events; "" = every tenant.
	Tenant string
	// Since and Until bound the events' time to [Since, Until). Required.
	Since, Until time.Time
	// MaxEvents stops the replay after this many events (the report says
	// Truncated). Default 0: no limit.
	MaxEvents int64
	// TimeLimit stops the replay between two batches once it has run this
	// long (the report says Truncated, Stopped "time_limit"). Default 0: none
	// (ctx still bounds it, with an error).
	TimeLimit time.Duration
	// Samples is how many diff rows of each class the report keeps (the
	// first ones in time order). Default 20.
	Samples int
	// TopGroups is how many groups per side the report lists (most findings
	// first). Default 20.
	TopGroups int
	// Workers evaluate conditions in parallel (detect.Options.Workers).
	// Default GOMAXPROCS.
	Workers int
	// OnFinding, when set, gets every finding with its class, in time order
	// (side is "new" or "deployed"; for class both, the new side's finding).
	OnFinding func(class Class, f *event.Finding)
}

// Class is how a finding compares across the two versions.
type Class string

const (
	OnlyNew      Class = "only_new"
	OnlyDeployed Class = "only_deployed"
	Both         Class = "both"
)

// Report is what a backtest found.
type Report struct {
	RuleID    string    `json:"rule_id"`
	Tenant    string    `json:"tenant,omitempty"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Events    int64     `json:"events"`
	Truncated bool      `json:"truncated"`         // stopped before Until
	Stopped   string    `json:"stopped,omitempty"` // why: "max_events" or "time_limit"
	LastEvent time.Time `json:"last_event,omitempty"`
	ElapsedMs int64     `json:"elapsed_ms"`
	New       Side      `json:"new"`
	Deployed  *Side     `json:"deployed,omitempty"`
	Diff      Diff      `json:"diff"`
}

// Side is one version's findings.
type Side struct {
	Version  string       `json:"version"`
	Kind     string       `json:"kind"`
	Findings int64        `json:"findings"`
	Groups   int          `json:"groups"`     // distinct (tenant, group key)
	Top      []GroupCount `json:"top_groups"` // most findings first
	groups   map[groupID]int64
}

// GroupCount is the findings of one group.
type GroupCount struct {
	Tenant   string `json:"tenant"`
	GroupKey string `json:"group_key"`
	Findings int64  `json:"findings"`
}

type groupID struct{ tenant, group string }

// Diff compares the two versions by finding key: tenant, group key and the
// event that completed the finding (the last of its event ids).
type Diff struct {
	OnlyNew      int64     `json:"only_new"`
	OnlyDeployed int64     `json:"only_deployed"`
	Both         int64     `json:"both"`
	Rows         []DiffRow `json:"rows"` // up to Samples per class, in time order
}

// DiffRow is one sample finding.
type DiffRow struct {
	Class    Class     `json:"class"`
	Tenant   string    `json:"tenant"`
	GroupKey string    `json:"group_key"`
	EventID  string    `json:"event_id"`
	Time     time.Time `json:"ts"`
	Severity string    `json:"severity"`
	Summary  string    `json:"summary"`
}

// maxGroups bounds the per-group counts a side keeps; findings of further
// groups still count in Findings and Groups stops growing (documented).
const maxGroups = 100000

var errEnough = errors.New("max events reached")

// Run replays the events of req through req.Rule and req.Deployed.
func Run(ctx context.Context, src Source, req Request) (*Report, error) {
	if req.Rule == nil {
		return nil, errors.New("cannot backtest: no rule")
	}
	if req.Deployed != nil && req.Deployed.ID != req.Rule.ID {
		return nil, fmt.Errorf("cannot backtest: deployed rule %q is not %q", req.Deployed.ID, req.Rule.ID)
	}
	if req.Since.IsZero() || req.Until.IsZero() || !req.Since.Before(req.Until) {
		return nil, errors.New("cannot backtest: want since before until")
	}
	if req.Samples <= 0 {
		req.Samples = 20
	}
	if req.TopGroups <= 0 {
		req.TopGroups = 20
	}
	start := time.Now()
	rep := &Report{RuleID: req.Rule.ID, Tenant: req.Tenant, Since: req.Since.UTC(), Until: req.Until.UTC(),
		New: Side{Version: req.Rule.Version, Kind: req.Rule.Kind, groups: map[groupID]int64{}}, Diff: Diff{Rows: []DiffRow{}}}
	newEng, err := engineFor(req.Rule, req)
	if err != nil {
		return nil, err
	}
	var depEng *detect.Engine
	if req.Deployed != nil {
		rep.Deployed = &Side{Version: req.Deployed.Version, Kind: req.Deployed.Kind, groups: map[groupID]int64{}}
		if depEng, err = engineFor(req.Deployed, req); err != nil {
			return nil, err
		}
	}
	samples := map[Class]int{}
	err = src.StreamEvents(ctx, store.EventRange{Tenant: req.Tenant, From: req.Since, To: req.Until}, func(evs []event.Event) error {
		if req.MaxEvents > 0 && rep.Events+int64(len(evs)) >= req.MaxEvents {
			evs = evs[:req.MaxEvents-rep.Events]
			rep.Truncated, rep.Stopped = true, "max_events"
		}
		if len(evs) == 0 {
			return errEnough
		}
		rep.Events += int64(len(evs))
		rep.LastEvent = evs[len(evs)-1].Time.UTC()
		nf, err := newEng.Detect(ctx, evs)
		if err != nil {
			return err
		}
		var df []event.Finding
		if depEng != nil {
			if df, err = depEng.Detect(ctx, evs); err != nil {
				return err
			}
		}
		// A finding is emitted while its last event is processed, so both
		// versions' findings for the same key come from the same batch:
		// the diff is exact per batch and nothing is kept across batches.
		rep.diffBatch(nf, df, req, samples)
		if !rep.Truncated && req.TimeLimit > 0 && time.Since(start) >= req.TimeLimit {
			rep.Truncated, rep.Stopped = true, "time_limit"
		}
		if rep.Truncated {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("cannot backtest %s: %w", req.Rule.ID, err)
	}
	rep.New.finish(req.TopGroups)
	if rep.Deployed != nil {
		rep.Deployed.finish(req.TopGroups)
	}
	rep.ElapsedMs = time.Since(start).Milliseconds()
	return rep, nil
}

// engineFor builds a fresh engine holding only r: in-memory state, no
// baselines store, no metrics registry.
func engineFor(r *detect.Rule, req Request) (*detect.Engine, error) {
	return detect.New(&detect.Pack{Rules: []*detect.Rule{r}, Lists: req.Lists}, detect.Options{Workers: req.Workers})
}

type findingKey struct{ tenant, group, event string }

func keyOf(f *event.Finding) findingKey {
	k := findingKey{tenant: f.Tenant, group: f.GroupKey}
	if n := len(f.EventIDs); n > 0 {
		k.event = f.EventIDs[n-1]
	}
	return k
}

func (rep *Report) diffBatch(nf, df []event.Finding, req Request, samples map[Class]int) {
	pending := make(map[findingKey][]int, len(df)) // deployed findings not matched yet
	for i := range df {
		k := keyOf(&df[i])
		pending[k] = append(pending[k], i)
		rep.Deployed.count(&df[i])
	}
	type classed struct {
		c Class
		f *event.Finding
	}
	var out []classed
	for i := range nf {
		f := &nf[i]
		rep.New.count(f)
		k := keyOf(f)
		if ids := pending[k]; len(ids) > 0 {
			pending[k] = ids[1:]
			out = append(out, classed{Both, f})
			continue
		}
		out = append(out, classed{OnlyNew, f})
	}
	for i := range df {
		k := keyOf(&df[i])
		if ids := pending[k]; len(ids) > 0 && ids[0] == i {
			pending[k] = ids[1:]
			out = append(out, classed{OnlyDeployed, &df[i]})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].f.Time.Before(out[b].f.Time) })
	for _, o := range out {
		switch o.c {
		case Both:
			rep.Diff.Both++
		case OnlyNew:
			rep.Diff.OnlyNew++
		case OnlyDeployed:
			rep.Diff.OnlyDeployed++
		}
		if req.OnFinding != nil {
			req.OnFinding(o.c, o.f)
		}
		if samples[o.c] < req.Samples {
			samples[o.c]++
			k := keyOf(o.f)
			rep.Diff.Rows = append(rep.Diff.Rows, DiffRow{Class: o.c, Tenant: k.tenant, GroupKey: k.group, EventID: k.event,
				Time: o.f.Time.UTC(), Severity: string(o.f.Severity), Summary: o.f.Summary})
		}
	}
}

func (s *Side) count(f *event.Finding) {
	s.Findings++
	g := groupID{f.Tenant, f.GroupKey}
	if _, ok := s.groups[g]; ok || len(s.groups) < maxGroups {
		s.groups[g]++
	}
}

func (s *Side) finish(top int) {
	s.Groups = len(s.groups)
	s.Top = make([]GroupCount, 0, min(top, len(s.groups)))
	for g, n := range s.groups {
		s.Top = append(s.Top, GroupCount{Tenant: g.tenant, GroupKey: g.group, Findings: n})
	}
	sort.Slice(s.Top, func(i, j int) bool {
		a, b := s.Top[i], s.Top[j]
		if a.Findings != b.Findings {
			return a.Findings > b.Findings
		}
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		return a.GroupKey < b.GroupKey
	})
	if len(s.Top) > top {
		s.Top = s.Top[:top]
	}
	s.groups = nil
}
