package detect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Rule kinds.
const (
	KindMatch     = "match"
	KindThreshold = "threshold"
	KindNewTerm   = "new_term"
	KindSequence  = "sequence"
)

// DefaultDedup is the dedup window used by incidents when a rule sets none.
const DefaultDedup = time.Hour

// Duration is a YAML duration that also accepts days ("30d") and weeks ("2w").
type Duration time.Duration

// ParseDuration parses Go durations plus "d" (days) and "w" (weeks) suffixes.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	for suf, mul := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if strings.HasSuffix(s, suf) {
			n, err := strconv.ParseFloat(strings.TrimSuffix(s, suf), 64)
			if err != nil {
				return 0, fmt.Errorf("cannot parse duration %q", s)
			}
			return time.Duration(n * float64(mul)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse duration %q", s)
	}
	return d, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Step is one step of a sequence rule.
type Step struct {
	Name      string `yaml:"name"`
	Condition string `yaml:"condition"`
	// Absent: no event matching Condition may occur between the neighbouring
	// steps (or, as the first step, within `within` before the next step).
	Absent bool `yaml:"absent"`
	// Same and Differ bind this step to the event that matched the previous
	// (not absent) step: each listed event field must be equal to, or
	// differ from, that event's value (e.g. egress on another server than
	// the read: differ: [server_name]). For differ an empty value is
	// unknown and never counts as equal.
	Same   []string `yaml:"same"`
	Differ []string `yaml:"differ"`
}

// RuleTest is one inline test of a rule.
type RuleTest struct {
	Name          string           `yaml:"name"`
	Events        []map[string]any `yaml:"events"`
	Expect        int              `yaml:"expect"`
	ExpectSummary string           `yaml:"expect_summary"`
	// ExpectSeverity: every finding has this severity (rules that grade
	// their findings, e.g. diff).
	ExpectSeverity string `yaml:"expect_severity"`
	// Lists replace the pack's lists of the same name for this test only,
	// as a deployment's lists/ folder would (the rule's inline lists still
	// win): an opt-in rule shipped with an empty list is tested filled.
	Lists map[string][]string `yaml:"lists"`
}

// RuleSpec is the YAML form of a rule (docs/rules.md).
type RuleSpec struct {
	ID             string              `yaml:"id"`
	Title          string              `yaml:"title"`
	Description    string              `yaml:"description"`
	Severity       string              `yaml:"severity"`
	Status         string              `yaml:"status"`
	Tags           []string            `yaml:"tags"`
	Kind           string              `yaml:"kind"`
	By             []string            `yaml:"by"`
	Condition      string              `yaml:"condition"`
	Window         Duration            `yaml:"window"`
	Count          int                 `yaml:"count"`
	Distinct       string              `yaml:"distinct"`
	Fields         []string            `yaml:"fields"`
	History        Duration            `yaml:"history"`
	Learning       Duration            `yaml:"learning"`
	Terms          string              `yaml:"terms"` // new_term: CEL list(string) of extra terms (terms.go)
	Steps          []Step              `yaml:"steps"`
	Within         Duration            `yaml:"within"`
	Dedup          Duration            `yaml:"dedup"`
	Suppress       *SuppressSpec       `yaml:"suppress"`
	Summary        string              `yaml:"summary"`
	Runbook        string              `yaml:"runbook"`
	FalsePositives []string            `yaml:"false_positives"`
	References     []string            `yaml:"references"`
	Exceptions     []string            `yaml:"exceptions"`
	Lists          map[string][]string `yaml:"lists"`
	Tests          []RuleTest          `yaml:"tests"`
	// Diff (new_term only): "tool_definition" judges a new definition of a
	// tool by what changed from the previous one (defdiff.go).
	Diff string `yaml:"diff"`
}

// Rule is a validated, compiled rule.
type Rule struct {
	RuleSpec
	File    string // path within the pack, for messages
	Version string // first 16 hex of sha256 of the file
	Source  []byte // the file as loaded (the API serves it to edit and backtest)

	conds []*compiled // kind match/threshold/new_term: [condition]; sequence: one per step
	terms *termsExpr  // new_term with Terms (terms.go); nil = the fields term only
	// keep[i]: sequence only, the fields of step i's event the next
	// present step compares (Same, then Differ), saved with the partial.
	keep       [][]*fieldDef
	exceptions []*compiled
	lists      map[string][]string // pack lists overlaid with the rule's own
	listsVal   any                 // CEL value of lists
	summary    []tmplPart
	index      []indexKey // per cond: index constraint (zero = catch-all)
	// String accessors of By, Fields and Distinct (resolved once, not
	// looked up by name per event).
	byStr       []func(*event.Event) string
	fieldsStr   []func(*event.Event) string
	distinctStr func(*event.Event) string
	// reads: the fields the detect role needs whole (readsFields).
	readsOnce sync.Once
	reads     []string
	// trim: what Trimmed zeroes and cuts (inputTrim).
	trimOnce sync.Once
	trim     *trim
	// suppress: the effective suppression of a match rule (its own or the
	// pack default, suppressionOf); nil = every hit is a finding.
	suppress    *Suppression
	suppressStr []func(*event.Event) string
}

// strAccessors returns the string accessors of the named event fields.
func strAccessors(names []string) []func(*event.Event) string {
	out := make([]func(*event.Event) string, len(names))
	for i, f := range names {
		out[i] = eventFields[f].str
	}
	return out
}

// Dedup returns the rule's dedup window (default 1h).
func (r *Rule) DedupWindow() time.Duration {
	if r.Dedup <= 0 {
		return DefaultDedup
	}
	return time.Duration(r.Dedup)
}

// MaxCost is the highest static cost of the rule's conditions.
func (r *Rule) MaxCost() uint64 {
	var m uint64
	for _, c := range append(append([]*compiled{}, r.conds...), r.exceptions...) {
		if c.cost > m {
			m = c.cost
		}
	}
	return m
}

var validStatus = map[string]bool{"experimental": true, "test": true, "stable": true, "deprecated": true}

// parseRule decodes (strictly: unknown keys are errors), validates and compiles one rule file.
func parseRule(env *cel.Env, file string, data []byte, packLists map[string][]string) (*Rule, error) {
	var spec RuleSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("cannot parse: %w", err)
	}
	sum := sha256.Sum256(data)
	r := &Rule{RuleSpec: spec, File: file, Version: hex.EncodeToString(sum[:8])}
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if r.ID == "" {
		add("id is required")
	}
	if r.Title == "" {
		add("title is required")
	}
	if !event.Severity(r.Severity).Valid() {
		add("severity %q must be one of info, low, medium, high, critical", r.Severity)
	}
	if r.Status == "" {
		r.Status = "experimental"
	}
	if !validStatus[r.Status] {
		add("status %q must be one of experimental, test, stable, deprecated", r.Status)
	}
	for _, f := range append(append([]string{}, r.By...), r.Fields...) {
		if _, ok := eventFields[f]; !ok || f == "args" || f == "attrs" {
			add("unknown event field %q in by/fields", f)
		}
	}
	if r.Distinct != "" {
		if _, ok := eventFields[r.Distinct]; !ok {
			add("unknown event field %q in distinct", r.Distinct)
		}
	}
	r.lists = map[string][]string{}
	for k, v := range packLists {
		r.lists[k] = v
	}
	for k, v := range r.Lists {
		r.lists[k] = v
	}
	r.listsVal = listsValue(r.lists)

	comp := func(what, src string) *compiled {
		if strings.TrimSpace(src) == "" {
			add("%s: condition is required", what)
			return nil
		}
		c, err := compile(env, src, r.lists)
		if err != nil {
			add("%s: %w", what, err)
			return nil
		}
		return c
	}
	switch r.Kind {
	case KindMatch, KindThreshold, KindNewTerm:
		if len(r.Steps) > 0 {
			add("steps are only for kind sequence")
		}
		r.conds = []*compiled{comp("condition", r.Condition)}
	case KindSequence:
		if r.Condition != "" {
			add("condition is not used by kind sequence; put it in steps")
		}
		if len(r.Steps) < 2 {
			add("sequence needs at least 2 steps")
		}
		present := 0
		for i, s := range r.Steps {
			if s.Name == "" {
				add("step %d: name is required", i+1)
			}
			if !s.Absent {
				present++
			}
			if s.Absent && i == len(r.Steps)-1 {
				add("step %q: the last step cannot be absent (nothing would complete the sequence)", s.Name)
			}
			if s.Absent && i > 0 && r.Steps[i-1].Absent {
				add("step %q: two absent steps in a row", s.Name)
			}
			if len(s.Same)+len(s.Differ) > 0 {
				switch {
				case s.Absent:
					add("step %q: an absent step cannot have same/differ", s.Name)
				case present == 1:
					add("step %q: same/differ need an earlier step that is not absent", s.Name)
				}
				for _, f := range append(append([]string{}, s.Same...), s.Differ...) {
					if fd, ok := eventFields[f]; !ok || fd.str == nil {
						add("step %q: unknown event field %q in same/differ", s.Name, f)
					}
				}
			}
			r.conds = append(r.conds, comp("step "+s.Name, s.Condition))
		}
		if present < 1 {
			add("sequence needs a step that is not absent")
		}
		if r.Within <= 0 {
			add("within is required for kind sequence")
		}
		// What each step's partial keeps for the next present step's binding.
		r.keep = make([][]*fieldDef, len(r.Steps))
		for i, s := range r.Steps {
			if s.Absent || len(s.Same)+len(s.Differ) == 0 {
				continue
			}
			p := i - 1
			for p >= 0 && r.Steps[p].Absent {
				p--
			}
			if p < 0 {
				continue // reported above
			}
			for _, f := range append(append([]string{}, s.Same...), s.Differ...) {
				if fd, ok := eventFields[f]; ok && fd.str != nil {
					r.keep[p] = append(r.keep[p], fd)
				}
			}
		}
	default:
		add("kind %q must be one of match, threshold, new_term, sequence", r.Kind)
	}
	switch r.Kind {
	case KindThreshold:
		if r.Window <= 0 {
			add("window is required for kind threshold")
		}
		if r.Count < 1 {
			add("count must be ≥ 1 for kind threshold")
		}
	case KindNewTerm:
		if len(r.Fields) == 0 {
			add("fields is required for kind new_term")
		}
		if r.Diff != "" && r.Diff != DiffToolDefinition {
			add("diff %q must be %q", r.Diff, DiffToolDefinition)
		}
		if r.Diff != "" && r.Terms != "" {
			add("diff and terms cannot be combined (a diff compares one term with the previous one)")
		}
		if r.History <= 0 {
			r.History = Duration(30 * 24 * time.Hour)
		}
	default:
		if len(r.Fields) > 0 {
			add("fields is only for kind new_term")
		}
		if r.Diff != "" {
			add("diff is only for kind new_term")
		}
	}
	r.suppress = suppressionOf(r, add)
	if r.Kind != KindMatch && len(r.By) == 0 {
		r.By = []string{"tenant"}
	}
	compileTerms(env, r, add)
	for i, x := range r.Exceptions {
		r.exceptions = append(r.exceptions, comp(fmt.Sprintf("exception %d", i+1), x))
	}
	parts, err := parseTemplate(r.Summary)
	if err != nil {
		add("summary: %w", err)
	}
	r.summary = parts
	for i, t := range r.Tests {
		if t.Name == "" {
			add("test %d: name is required", i+1)
		}
		if len(t.Events) == 0 {
			add("test %q: events are required", t.Name)
		}
		if t.ExpectSeverity != "" && !event.Severity(t.ExpectSeverity).Valid() {
			add("test %q: expect_severity %q is not a severity", t.Name, t.ExpectSeverity)
		}
		for j, m := range t.Events {
			if _, err := eventFromMap(m, j, time.Time{}); err != nil {
				add("test %q event %d: %w", t.Name, j+1, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, c := range r.conds {
		r.index = append(r.index, indexOf(c))
		_ = i
	}
	r.byStr, r.fieldsStr = strAccessors(r.By), strAccessors(r.Fields)
	if r.suppress != nil {
		r.suppressStr = strAccessors(r.suppress.By)
	}
	if r.Distinct != "" {
		r.distinctStr = eventFields[r.Distinct].str
	}
	return r, nil
}

// tmplPart is a literal or a {{field}} placeholder of a summary template.
type tmplPart struct {
	lit   string
	field string
}

var tmplRe = regexp.MustCompile(`\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}`)

// extraTemplateVars are filled by the rule kinds.
var extraTemplateVars = map[string]bool{"change": true, "count": true, "distinct": true, "term": true, "window": true, "rule_id": true, "title": true, "steps": true}

func parseTemplate(s string) ([]tmplPart, error) {
	var parts []tmplPart
	last := 0
	var errs []string
	for _, m := range tmplRe.FindAllStringSubmatchIndex(s, -1) {
		parts = append(parts, tmplPart{lit: s[last:m[0]]})
		name := s[m[2]:m[3]]
		name = strings.TrimPrefix(name, "event.")
		if _, ok := eventFields[name]; !ok && !extraTemplateVars[name] {
			errs = append(errs, fmt.Sprintf("unknown placeholder {{%s}}", name))
		}
		parts = append(parts, tmplPart{field: name})
		last = m[1]
	}
	parts = append(parts, tmplPart{lit: s[last:]})
	if strings.Contains(tmplRe.ReplaceAllString(s, ""), "{{") {
		errs = append(errs, "malformed placeholder")
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return parts, nil
}

// renderSummary fills a template from the event and extra values.
func renderSummary(parts []tmplPart, e *event.Event, extra map[string]string) string {
	var b strings.Builder
	for _, p := range parts {
		if p.field == "" {
			b.WriteString(p.lit)
			continue
		}
		if v, ok := extra[p.field]; ok {
			b.WriteString(v)
			continue
		}
		if fd, ok := eventFields[p.field]; ok {
			v := fd.str(e)
			if len(v) > 200 {
				v = v[:200] + "…"
			}
			b.WriteString(v)
		}
	}
	return b.String()
}
