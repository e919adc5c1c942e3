package detect

import (
	"context"
	"fmt"
	"time"
)

// Baseline is one persisted new_term observation. Term "" records when the
// group was first seen (its learning period starts there).
type Baseline struct {
	RuleID    string    `ch:"rule_id"`
	Tenant    string    `ch:"tenant"`
	GroupKey  string    `ch:"group_key"`
	Term      string    `ch:"term"`
	FirstSeen time.Time `ch:"first_seen"`
	LastSeen  time.Time `ch:"last_seen"`
}

// BaselineStore persists new_term baselines (ClickHouse: ClickHouseBaselines).
type BaselineStore interface {
	LoadBaselines(ctx context.Context, ruleIDs []string) ([]Baseline, error)
	SaveBaselines(ctx context.Context, rows []Baseline) error
}

// LoadBaselines fills new_term state from the store, so a restart does not
// re-alert on terms already seen. Call it after New and after Replace.
func (e *Engine) LoadBaselines(ctx context.Context) error {
	if e.opts.Baselines == nil {
		return nil
	}
	e.mu.Lock()
	var ids []string
	for _, rs := range e.rules {
		if rs.nt != nil {
			ids = append(ids, rs.rule.ID)
		}
	}
	e.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	rows, err := e.opts.Baselines.LoadBaselines(ctx, ids)
	if err != nil {
		e.m.baseline.Inc()
		return fmt.Errorf("cannot load new_term baselines: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.applyBaselines(rows)
	return nil
}

func (e *Engine) applyBaselines(rows []Baseline) {
	byID := map[string]*ruleState{}
	for _, rs := range e.rules {
		if rs.nt != nil {
			byID[rs.rule.ID] = rs
		}
	}
	for _, b := range rows {
		rs := byID[b.RuleID]
		if rs == nil {
			continue
		}
		key := b.Tenant + "\x00" + b.GroupKey
		g, ok := rs.nt.get(key)
		if !ok {
			g = &ntGroup{first: b.FirstSeen, terms: newLRU[time.Time](e.opts.MaxTermsPerGroup, nil)}
			rs.nt.put(key, g)
		}
		if b.FirstSeen.Before(g.first) {
			g.first = b.FirstSeen
		}
		if b.Term == "" {
			continue
		}
		if last, ok := g.terms.get(b.Term); !ok || b.LastSeen.After(last) {
			g.terms.put(b.Term, b.LastSeen)
		}
	}
}

// flushBaselines saves pending baselines; failures are counted and retried
// with the next batch (bounded), never failing detection.
func (e *Engine) flushBaselines(ctx context.Context) {
	if len(e.dirty) == 0 {
		return
	}
	if e.opts.Baselines == nil {
		e.dirty = e.dirty[:0]
		return
	}
	if err := e.opts.Baselines.SaveBaselines(ctx, e.dirty); err != nil {
		e.m.baseline.Inc()
		e.stats.BaselineErrors++
		e.opts.Logger.Warn("cannot save new_term baselines", "rows", len(e.dirty), "err", err)
		if len(e.dirty) > 100000 {
			e.dirty = e.dirty[len(e.dirty)-100000:]
		}
		return
	}
	e.dirty = e.dirty[:0]
}
