package detect

import (
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// SuppressSpec is a match rule's `suppress` block (docs/rules.md): the
// findings of one (tenant, rule, group, by values) within one window are
// stored as the first of them, with a count of the others and the last one.
type SuppressSpec struct {
	By       []string `yaml:"by"`       // event fields; default DefaultSuppressBy
	Window   Duration `yaml:"window"`   // default DefaultSuppressWindow; whole seconds, ≥ 1m
	Disabled bool     `yaml:"disabled"` // every hit is a finding (e.g. a medium rule whose every call matters)
}

// Suppression is a rule's effective suppression.
type Suppression struct {
	By     []string
	Window time.Duration
}

// The pack default for match rules of severity info, low and medium: one
// finding per agent, server and tool per hour. High and critical match
// rules suppress only when they say so: each of their hits is worth a look.
var DefaultSuppressBy = []string{"agent_id", "server_name", "tool_name"}

// DefaultSuppressWindow is the suppression window when a rule sets none.
const DefaultSuppressWindow = time.Hour

// MaxSuppressWindow bounds a rule's suppression window: the respond role
// reloads the windows stored within twice this.
const MaxSuppressWindow = 24 * time.Hour

// Suppression returns the rule's effective suppression, nil when every hit
// is a finding.
func (r *Rule) Suppression() *Suppression { return r.suppress }

// suppressionOf validates r.Suppress and applies the pack default.
func suppressionOf(r *Rule, add func(string, ...any)) *Suppression {
	sp := r.Suppress
	if r.Kind != KindMatch {
		if sp != nil {
			add("suppress is only for kind match (the other kinds aggregate already)")
		}
		return nil
	}
	if sp == nil {
		if event.Severity(r.Severity).Rank() >= event.SeverityHigh.Rank() {
			return nil
		}
		return &Suppression{By: DefaultSuppressBy, Window: DefaultSuppressWindow}
	}
	if sp.Disabled {
		if len(sp.By) > 0 || sp.Window != 0 {
			add("suppress: disabled with by or window set")
		}
		return nil
	}
	s := &Suppression{By: sp.By, Window: time.Duration(sp.Window)}
	if len(s.By) == 0 {
		s.By = DefaultSuppressBy
	}
	if s.Window == 0 {
		s.Window = DefaultSuppressWindow
	}
	if s.Window < time.Minute || s.Window > MaxSuppressWindow || s.Window%time.Second != 0 {
		add("suppress: window %s must be whole seconds, from 1m to %s", s.Window, MaxSuppressWindow)
	}
	for _, f := range s.By {
		if fd, ok := eventFields[f]; !ok || fd.str == nil || f == "args" || f == "attrs" {
			add("suppress: unknown event field %q in by", f)
		}
	}
	return s
}

// suppressKey joins the rule's suppress.by values of ev with "|".
func (r *Rule) suppressKey(ev *event.Event) string {
	var b strings.Builder
	for i, str := range r.suppressStr {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(str(ev))
	}
	return b.String()
}

// Suppressor applies suppression to a stream of findings: the first finding
// of a window is kept, the later ones of the same window are counted on it.
// Windows are aligned to the epoch (bucket = time / window, as incident ids
// are), so which window a finding falls in does not depend on arrival
// order. The respond role owns one per instance, holding the windows of its
// findings partitions (a window's key refines the partition key, so one
// instance owns each); `rules eval` uses one to count what would be stored.
// Safe for concurrent use.
type Suppressor struct {
	mu     sync.Mutex
	open   map[string]*window
	dirty  map[string]bool
	latest time.Time // the highest finding time seen (expiry)
	adds   int
}

type window struct {
	rep  event.Finding // the stored finding: the first, with the count
	end  time.Time
	seen map[uint64]struct{} // hashes of the finding ids counted (at most maxSeen)
}

// maxSeen bounds the finding ids a window remembers. A finding id counts
// once per window: the client and server observations of one call give
// one id, and so does an observation produced again (a collector retry,
// the call join's release after a crash) at a new position the position
// guard cannot recognise. Past maxSeen ids in one window (a very noisy
// rule), a repeated id is counted again.
const maxSeen = 4096

// seenSeed seeds the finding id hashes (per process: the memory is too).
var seenSeed = maphash.MakeSeed()

func newWindow(f *event.Finding) *window {
	return &window{rep: *f, end: windowEnd(f), seen: map[uint64]struct{}{maphash.String(seenSeed, f.FindingID): {}}}
}

// NewSuppressor returns an empty Suppressor.
func NewSuppressor() *Suppressor {
	return &Suppressor{open: map[string]*window{}, dirty: map[string]bool{}}
}

func windowKey(f *event.Finding) string {
	b := f.Time.UnixNano() / int64(f.SuppressWindow)
	return f.Tenant + "\x00" + f.RuleID + "\x00" + f.GroupKey + "\x00" + f.SuppressKey + "\x00" +
		strconv.FormatInt(int64(f.SuppressWindow), 10) + "\x00" + strconv.FormatInt(b, 10)
}

func windowEnd(f *event.Finding) time.Time {
	w := int64(f.SuppressWindow)
	return time.Unix(0, (f.Time.UnixNano()/w+1)*w).UTC()
}

func lastEventID(f *event.Finding) string {
	if n := len(f.EventIDs); n > 0 {
		return f.EventIDs[n-1]
	}
	return ""
}

// Add reports whether f opens a window (keep it: it is the finding stored
// for the window) or is counted on an open one (drop it). f.SuppressPos is
// where f's event was on the events topic (partition<<40 | offset+1, set by
// the ingest role; `rules eval` numbers the findings): a finding at or
// before the position the window last counted, in the same partition, is
// a replay and is not counted again. The events of one agent are in one
// partition, so with agent_id in suppress.by (the default) every window's
// findings are. Findings without suppression are always kept.
func (s *Suppressor) Add(f *event.Finding) bool {
	if f.SuppressKey == "" || f.SuppressWindow <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Time.After(s.latest) {
		s.latest = f.Time
	}
	if s.adds++; s.adds%4096 == 0 {
		s.expire()
	}
	k := windowKey(f)
	w, ok := s.open[k]
	if !ok {
		f.SuppressedCount, f.LastEventID, f.LastSeen = 0, lastEventID(f), f.Time
		s.open[k] = newWindow(f)
		s.dirty[k] = true
		return true
	}
	r := &w.rep
	pos := f.SuppressPos
	h := maphash.String(seenSeed, f.FindingID)
	if _, seen := w.seen[h]; seen || (pos != 0 && pos>>40 == r.SuppressPos>>40 && pos <= r.SuppressPos) {
		return false
	}
	r.SuppressedCount++
	if pos != 0 {
		r.SuppressPos = pos
	}
	if !f.Time.Before(r.LastSeen) {
		r.LastSeen, r.LastEventID = f.Time, lastEventID(f)
	}
	if len(w.seen) < maxSeen {
		w.seen[h] = struct{}{}
	}
	s.dirty[k] = true
	return false
}

// expire forgets windows that ended more than a window before the latest
// finding (a finding that late opens a window of its own). Caller holds mu.
func (s *Suppressor) expire() {
	for k, w := range s.open {
		if !s.dirty[k] && w.end.Add(w.rep.SuppressWindow).Before(s.latest) {
			delete(s.open, k)
		}
	}
}

// SetIncident records the incident id the incident owner gave a kept
// finding on its window's stored finding.
func (s *Suppressor) SetIncident(f *event.Finding) {
	if f.SuppressKey == "" || f.SuppressWindow <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.open[windowKey(f)]; w != nil && w.rep.FindingID == f.FindingID {
		w.rep.IncidentID = f.IncidentID
	}
}

// Flush returns the stored findings of the windows opened or counted on
// since the last Flush, in their current state, to be stored (each a new
// version of the same finding id).
func (s *Suppressor) Flush() []event.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]event.Finding, 0, len(s.dirty))
	for k := range s.dirty {
		out = append(out, s.open[k].rep)
	}
	clear(s.dirty)
	slices.SortFunc(out, func(a, b event.Finding) int { return strings.Compare(a.FindingID, b.FindingID) })
	return out
}

// Reset replaces the open windows with the stored findings given (their
// latest versions; findings without suppression are ignored): what an
// instance holds after its findings partitions changed.
func (s *Suppressor) Reset(stored []event.Finding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open, s.dirty, s.latest = map[string]*window{}, map[string]bool{}, time.Time{}
	for _, f := range stored {
		if f.SuppressKey == "" || f.SuppressWindow <= 0 {
			continue
		}
		if f.Time.After(s.latest) {
			s.latest = f.Time
		}
		s.open[windowKey(&f)] = newWindow(&f)
	}
}

// Len is the number of open windows held.
func (s *Suppressor) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}
