package detect

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// A `distinct` threshold counts the distinct values of a field per group
// in clock-aligned windows (window k covers [k·W, (k+1)·W) of event time,
// W = the rule's window). At an event of window k it counts the values
// seen in windows k-1 and k, so any two values less than W apart are
// counted together (values up to 2W apart may be). It fires at most once
// per window, and not when every value of window k was already in the
// finding of window k-1 (the same users keep using the session).
//
// Only the first occurrence of a value in a window can change anything, so
// the ingest role forwards only those (mustForwardDistinct): the busiest
// remote rules (a session's user on every event) then cost one input per
// (session, user, hour) instead of one per event, and the findings are
// those one engine that sees every event gives. The finding id hashes the
// window and each value with the id of its first occurrence (the earliest
// by event time, then id), not every event of the window.

// occ is a value's first occurrence in a window.
type occ struct {
	t  time.Time
	id string
}

func (o occ) before(p occ) bool { return o.t.Before(p.t) || o.t.Equal(p.t) && o.id < p.id }

// distinctWin is a distinct threshold group's state.
type distinctWin struct {
	win       int64          // the latest window seen (k)
	cur, prev map[string]occ // values of window k and of window k-1
	fired     int64          // the window of the last finding; valid when firedSet != nil
	firedSet  []string       // the values of the last finding, sorted
}

// windowOf is the index of the aligned window of t.
func windowOf(t time.Time, w time.Duration) int64 {
	n := t.UnixNano()
	k := n / int64(w)
	if n < 0 && n%int64(w) != 0 {
		k-- // floor for times before 1970
	}
	return k
}

// thresholdDistinct applies ev to a distinct threshold.
func (e *Engine) thresholdDistinct(rs *ruleState, ev *event.Event) *event.Finding {
	r := rs.rule
	w := time.Duration(r.Window)
	k := windowOf(ev.Time, w)
	kb, kh := e.stateKeyBytes(rs, ev)
	g, ok := rs.thr.getH(kh, kb)
	if !ok {
		g = newThrGroup()
		rs.thr.putH(kh, string(kb), g)
	}
	d := g.dw
	if d == nil {
		d = &distinctWin{win: k, cur: map[string]occ{}}
		g.dw = d
	}
	switch {
	case k == d.win+1:
		d.prev, d.cur, d.win = d.cur, map[string]occ{}, k
	case k > d.win+1:
		d.prev, d.cur, d.win = nil, map[string]occ{}, k
	}
	var m map[string]occ
	switch k {
	case d.win:
		m = d.cur
	case d.win - 1:
		if d.prev == nil {
			d.prev = map[string]occ{}
		}
		m = d.prev
	default:
		return nil // older than the windows kept: it cannot count
	}
	v := r.distinctStr(ev)
	o := occ{ev.Time, ev.EventID}
	if have, seen := m[v]; seen {
		if o.before(have) {
			m[v] = o // an earlier occurrence, arrived later: ids stay exact
		}
		return nil // nothing that decides a finding changed
	}
	m[v] = o
	if k != d.win || d.firedSet != nil && d.fired == k {
		return nil
	}
	vals := make([]string, 0, len(d.cur)+len(d.prev))
	for x := range d.cur {
		vals = append(vals, x)
	}
	for x := range d.prev {
		if _, dup := d.cur[x]; !dup {
			vals = append(vals, x)
		}
	}
	if len(vals) < r.Count {
		return nil
	}
	if d.firedSet != nil && d.fired == k-1 {
		news := false
		for x := range d.cur {
			if _, in := slices.BinarySearch(d.firedSet, x); !in {
				news = true
				break
			}
		}
		if !news {
			return nil // the values of the last finding, still in use
		}
	}
	slices.Sort(vals)
	ids := make([]string, len(vals))
	hashed := make([]string, 0, 1+2*len(vals))
	hashed = append(hashed, "window:"+strconv.FormatInt(k, 10))
	for i, x := range vals {
		first, ok := d.cur[x]
		if p, inPrev := d.prev[x]; inPrev && (!ok || p.before(first)) {
			first = p
		}
		ids[i] = first.id
		hashed = append(hashed, x, first.id)
	}
	start := time.Unix(0, (k-1)*int64(w)).UTC()
	evidence := map[string]any{"count": len(vals), "window": w.String(), "since": start.Format(time.RFC3339),
		"distinct_field": r.Distinct, "distinct_values": vals, "event": evidenceOf(ev)}
	extra := map[string]string{"count": strconv.Itoa(len(vals)), "window": w.String(), "distinct": strings.Join(vals, ", ")}
	group := groupKey(r.By, ev)
	f := e.finding(r, ev, group, ids, evidence, extra)
	f.FindingID = findingID(r, ev.Tenant, group, hashed)
	d.fired, d.firedSet = k, vals
	return f
}

// mustForwardDistinct reports whether the ingest role must forward ev to a
// distinct threshold's detect role: the first occurrence of its value in
// its window among the events of its partition key (one agent, whose
// events arrive in order on one partition), or an earlier one. A lost
// cache (restart, rebalance) forwards again, which the detect role ignores.
func (e *Engine) mustForwardDistinct(rs *ruleState, ev *event.Event, group []byte) bool {
	r := rs.rule
	if e.fwdDistinct == nil {
		e.fwdDistinct = newLRU[occ](4*e.opts.MaxKeysPerRule, nil)
	}
	k := windowOf(ev.Time, time.Duration(r.Window))
	b := append(e.tb[:0], r.ID...)
	b = append(append(b, 0), ev.PartitionKey()...)
	b = append(append(b, 0), group...)
	b = append(append(b, 0), r.distinctStr(ev)...)
	b = strconv.AppendInt(append(b, 0), k, 36)
	e.tb = b
	h := keyHash(b)
	o := occ{ev.Time, ev.EventID}
	if have, ok := e.fwdDistinct.getH(h, b); ok && !o.before(have) {
		return false
	}
	e.fwdDistinct.putH(h, string(b), occ{ev.Time, strings.Clone(ev.EventID)})
	return true
}
