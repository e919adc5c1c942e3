package detect

import (
	"encoding/json"
	"fmt"
	"time"
)

// The detect role keeps the state of its groups in a compacted Kafka topic
// (mcpwatch.detect.state.v1): one record per group, key = the group's input
// key (tenant/rule/group, so it lands in the partition of the same number as
// its inputs), value = the JSON below, or no value once the group is empty.
// The records of a batch are produced in the transaction that commits the
// batch's offsets and findings, so the changelog never runs ahead of or
// behind the inputs; on assignment the new owner replays its partitions.

// StateRecord is one changelog record.
type StateRecord struct {
	Key   []byte
	Value []byte // nil: the group is gone (a tombstone)
}

type groupJSON struct {
	V       int       `json:"v"` // format version, 1
	Rule    string    `json:"rule"`
	Version string    `json:"version"`
	Tenant  string    `json:"tenant"`
	Group   string    `json:"group"`
	Thr     *thrJSON  `json:"threshold,omitempty"`
	NT      *ntJSON   `json:"new_term,omitempty"`
	Seq     *seqJSON  `json:"sequence,omitempty"`
	Saved   time.Time `json:"saved"`
}

type thrJSON struct {
	Times []time.Time `json:"times"`
	IDs   []string    `json:"ids"`
	// Keys parallel IDs (occurrenceKey); records written before them have
	// none, and their events' keys are their ids.
	Keys  []string `json:"keys,omitempty"`
	Spent []string `json:"spent,omitempty"` // keys
	// A distinct threshold's windows (distinct.go). Records written before
	// them held a sliding window's values ("distinct"), which are ignored.
	Win      int64              `json:"win,omitempty"`
	Cur      map[string]occJSON `json:"cur,omitempty"`
	Prev     map[string]occJSON `json:"prev,omitempty"`
	Fired    int64              `json:"fired,omitempty"`
	FiredSet []string           `json:"fired_set,omitempty"`
}

type occJSON struct {
	T  time.Time `json:"t"`
	ID string    `json:"id"`
}

func occsJSON(m map[string]occ) map[string]occJSON {
	if m == nil {
		return nil
	}
	out := make(map[string]occJSON, len(m))
	for v, o := range m {
		out[v] = occJSON{o.t, o.id}
	}
	return out
}

func occsOf(m map[string]occJSON) map[string]occ {
	if m == nil {
		return nil
	}
	out := make(map[string]occ, len(m))
	for v, o := range m {
		out[v] = occ{o.T, o.ID}
	}
	return out
}

type termJSON struct {
	Term string    `json:"term"`
	Last time.Time `json:"last"`
}

type ntJSON struct {
	First time.Time  `json:"first"`
	Terms []termJSON `json:"terms"` // oldest first
}

type partialJSON struct {
	Start time.Time `json:"start"`
	IDs   []string  `json:"ids"`
	// Keys parallel IDs (occurrenceKey); without them, keys = ids.
	Keys  []string         `json:"keys,omitempty"`
	Steps []map[string]any `json:"steps"`
	Kept  []string         `json:"kept,omitempty"`
}

type seqJSON struct {
	Prog     []*partialJSON `json:"prog"`
	AbsentAt time.Time      `json:"absent_at,omitzero"`
	Fired    []string       `json:"fired,omitempty"`
	FiredAt  time.Time      `json:"fired_at,omitzero"`
}

// Changelog returns the records of the groups changed since the last call
// (Apply marks them), and forgets them.
func (e *Engine) Changelog() ([]StateRecord, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]StateRecord, 0, len(e.groups))
	for key, d := range e.groups {
		v, err := e.encodeGroup(d)
		if err != nil {
			return nil, err
		}
		out = append(out, StateRecord{Key: []byte(key), Value: v})
	}
	clear(e.groups)
	return out, nil
}

// encodeGroup is the group's changelog value; nil when it holds nothing.
func (e *Engine) encodeGroup(d dirtyGroup) ([]byte, error) {
	r := d.rs.rule
	g := groupJSON{V: 1, Rule: r.ID, Version: r.Version, Tenant: d.tenant, Group: d.group, Saved: time.Now().UTC()}
	switch r.Kind {
	case KindThreshold:
		t, ok := d.rs.thr.get(d.stateKey)
		if !ok {
			return nil, nil
		}
		g.Thr = &thrJSON{Times: t.times[t.off:], IDs: t.ids[t.off:], Keys: t.keys[t.off:], Spent: t.spent}
		if d := t.dw; d != nil {
			g.Thr.Win, g.Thr.Cur, g.Thr.Prev = d.win, occsJSON(d.cur), occsJSON(d.prev)
			g.Thr.Fired, g.Thr.FiredSet = d.fired, d.firedSet
		}
	case KindNewTerm:
		n, ok := d.rs.nt.get(d.stateKey)
		if !ok {
			return nil, nil
		}
		g.NT = &ntJSON{First: n.first}
		n.terms.each(func(k string, last time.Time) { g.NT.Terms = append(g.NT.Terms, termJSON{k, last}) })
	case KindSequence:
		q, ok := d.rs.seq.get(d.stateKey)
		if !ok {
			return nil, nil
		}
		g.Seq = &seqJSON{AbsentAt: q.absentAt, Fired: q.fired, FiredAt: q.firedAt}
		for _, p := range q.prog {
			if p == nil {
				g.Seq.Prog = append(g.Seq.Prog, nil)
				continue
			}
			g.Seq.Prog = append(g.Seq.Prog, &partialJSON{Start: p.start, IDs: p.ids, Keys: p.keys, Steps: p.steps, Kept: p.kept})
		}
	}
	b, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the state of %s/%s: %w", r.ID, d.group, err)
	}
	return b, nil
}

// Restore installs changelog records read in offset order: the newest
// record of each key wins, a tombstone (no value) leaves no state. Records
// of rules the pack does not have, or of another version of the rule, are
// skipped and counted.
func (e *Engine) Restore(recs []StateRecord) (restored, skipped int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	latest := make(map[string][]byte, len(recs))
	for _, rec := range recs {
		latest[string(rec.Key)] = rec.Value
	}
	for _, v := range latest {
		if v == nil {
			continue
		}
		var g groupJSON
		if err := json.Unmarshal(v, &g); err != nil || g.V != 1 {
			skipped++
			continue
		}
		rs := e.byID[g.Rule]
		if rs == nil || rs.rule.Version != g.Version {
			skipped++
			continue
		}
		key := g.Tenant + "\x00" + g.Group
		switch {
		case g.Thr != nil && rs.thr != nil:
			t := newThrGroup()
			for i := range g.Thr.Times {
				if i < len(g.Thr.IDs) {
					key := g.Thr.IDs[i]
					if len(g.Thr.Keys) == len(g.Thr.IDs) {
						key = g.Thr.Keys[i]
					}
					t.add(g.Thr.Times[i], g.Thr.IDs[i], key)
				}
			}
			t.spent = g.Thr.Spent
			if len(g.Thr.Cur)+len(g.Thr.Prev) > 0 && rs.rule.Distinct != "" {
				t.dw = &distinctWin{win: g.Thr.Win, cur: occsOf(g.Thr.Cur), prev: occsOf(g.Thr.Prev), fired: g.Thr.Fired, firedSet: g.Thr.FiredSet}
			}
			rs.thr.put(key, t)
		case g.NT != nil && rs.nt != nil:
			n := &ntGroup{first: g.NT.First, terms: newLRU[time.Time](e.opts.MaxTermsPerGroup, nil)}
			for _, t := range g.NT.Terms {
				n.terms.put(t.Term, t.Last)
			}
			rs.nt.put(key, n)
		case g.Seq != nil && rs.seq != nil:
			q := &seqGroup{prog: make([]*partial, len(rs.rule.Steps)), absentAt: g.Seq.AbsentAt, fired: g.Seq.Fired, firedAt: g.Seq.FiredAt}
			for i, p := range g.Seq.Prog {
				if p != nil && i < len(q.prog) {
					keys := p.Keys
					if len(keys) != len(p.IDs) {
						keys = p.IDs
					}
					q.prog[i] = &partial{start: p.Start, ids: p.IDs, keys: keys, steps: p.Steps, kept: p.Kept}
				}
			}
			rs.seq.put(key, q)
		default:
			skipped++
			continue
		}
		restored++
	}
	return restored, skipped
}

func (rs *ruleState) dropState(stateKey string) {
	switch {
	case rs.thr != nil:
		rs.thr.del(stateKey)
	case rs.nt != nil:
		rs.nt.del(stateKey)
	case rs.seq != nil:
		rs.seq.del(stateKey)
	}
}

// Retain keeps the state of the groups whose input key owns accepts and
// drops the rest (the detect role, when partitions are revoked or before a
// restore). It also forgets unsaved changes of dropped groups.
func (e *Engine) Retain(owns func(key []byte) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rs := range e.rules {
		var drop []string
		visit := func(k string) {
			tenant, group := splitStateKey(k)
			if !owns(GroupKey(tenant, rs.rule.ID, group)) {
				drop = append(drop, k)
			}
		}
		switch {
		case rs.thr != nil:
			rs.thr.each(func(k string, _ *thrGroup) { visit(k) })
		case rs.nt != nil:
			rs.nt.each(func(k string, _ *ntGroup) { visit(k) })
		case rs.seq != nil:
			rs.seq.each(func(k string, _ *seqGroup) { visit(k) })
		}
		for _, k := range drop {
			rs.dropState(k)
		}
	}
	for k := range e.groups {
		if !owns([]byte(k)) {
			delete(e.groups, k)
		}
	}
}

// ResetState drops every group's state and unsaved change (the detect role
// after an aborted transaction, before it restores its partitions).
func (e *Engine) ResetState() {
	e.Retain(func([]byte) bool { return false })
}
