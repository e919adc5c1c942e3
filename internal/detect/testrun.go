package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// TestBaseTime is the time of a test's first event when it gives no ts;
// event i without ts is at TestBaseTime + i seconds.
var TestBaseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// EventFromMap builds an event from a YAML/JSON map keyed by ClickHouse
// column names (the `ch` tags of event.Event). Values: strings; numbers for
// numeric fields; RFC 3339 or a duration offset ("+90s", "+8d") from the
// test base time for ts; lists of strings for tags/scopes; for arguments and
// result also a map or list (encoded as JSON). Defaults: tenant "default",
// kind "message", source "span", observer "server", outcome "ok",
// event_id "e<i+1>", ts base+i seconds, session_key "s1".
func EventFromMap(m map[string]any, i int) (event.Event, error) {
	return eventFromMap(m, i, time.Time{})
}

func eventFromMap(m map[string]any, i int, base time.Time) (event.Event, error) {
	if base.IsZero() {
		base = TestBaseTime
	}
	e := event.Event{
		EventID: "e" + strconv.Itoa(i+1), Tenant: "default", Kind: event.KindMessage, Source: event.SourceSpan,
		Observer: event.ObserverServer, Outcome: event.OutcomeOK, Time: base.Add(time.Duration(i) * time.Second), SessionKey: "s1",
	}
	rv := reflect.ValueOf(&e).Elem()
	rt := rv.Type()
	idx := map[string]int{}
	for j := 0; j < rt.NumField(); j++ {
		if n := rt.Field(j).Tag.Get("ch"); n != "" {
			idx[n] = j
		}
	}
	var errs []string
	for k, v := range m {
		if k == "args" { // convenience: arguments as a map
			k = "arguments"
		}
		j, ok := idx[k]
		if !ok {
			errs = append(errs, fmt.Sprintf("unknown field %q", k))
			continue
		}
		fv := rv.Field(j)
		if err := setField(fv, k, v, base); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return e, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return e, nil
}

func setField(fv reflect.Value, k string, v any, base time.Time) error {
	switch {
	case fv.Type() == reflect.TypeOf(time.Time{}):
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case string:
			if strings.HasPrefix(x, "+") {
				d, err := ParseDuration(x[1:])
				if err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
				t = base.Add(d)
			} else {
				var err error
				t, err = time.Parse(time.RFC3339Nano, x)
				if err != nil {
					return fmt.Errorf("%s: cannot parse time %q (RFC 3339 or +duration)", k, x)
				}
			}
		default:
			return fmt.Errorf("%s: want a time, got %T", k, v)
		}
		fv.Set(reflect.ValueOf(t.UTC()))
	case fv.Kind() == reflect.String:
		switch x := v.(type) {
		case string:
			fv.SetString(x)
		case map[string]any, []any:
			b, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			fv.SetString(string(b))
		case nil:
		default:
			fv.SetString(fmt.Sprint(x))
		}
	case fv.Kind() == reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list of strings", k)
		}
		out := make([]string, 0, len(l))
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
		fv.Set(reflect.ValueOf(out))
	case fv.CanInt():
		n, err := toInt(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		fv.SetInt(n)
	case fv.CanUint():
		n, err := toInt(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: want a non-negative number", k)
		}
		fv.SetUint(uint64(n))
	default:
		return fmt.Errorf("%s: unsupported field", k)
	}
	return nil
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

// TestResult is the outcome of one inline test.
type TestResult struct {
	RuleID, Test string
	Want, Got    int
	Err          string // summary mismatch or setup error
	EvalErrors   uint64 // CEL evaluation errors (no match); a hint, not a failure
	Findings     []event.Finding
}

// Passed reports whether the test passed.
func (t TestResult) Passed() bool { return t.Err == "" && t.Want == t.Got }

// RunTests runs each rule's inline tests against that rule alone with fresh state.
func RunTests(p *Pack) []TestResult {
	var out []TestResult
	for _, r := range p.Rules {
		for _, t := range r.Tests {
			out = append(out, runTest(r, t))
		}
	}
	return out
}

func runTest(r *Rule, t RuleTest) TestResult {
	res := TestResult{RuleID: r.ID, Test: t.Name, Want: t.Expect}
	if len(t.Lists) > 0 {
		var err error
		if r, err = withTestLists(r, t.Lists); err != nil {
			res.Err = err.Error()
			return res
		}
	}
	eng, err := New(&Pack{Rules: []*Rule{r}, Lists: r.lists}, Options{})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	evs := make([]event.Event, 0, len(t.Events))
	for i, m := range t.Events {
		ev, err := eventFromMap(m, i, time.Time{})
		if err != nil {
			res.Err = fmt.Sprintf("event %d: %v", i+1, err)
			return res
		}
		evs = append(evs, ev)
	}
	fs, err := eng.Detect(context.Background(), evs)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Got, res.Findings = len(fs), fs
	res.EvalErrors = eng.Stats().EvalErrors
	if t.ExpectSummary != "" && res.Err == "" {
		if len(fs) == 0 {
			res.Err = fmt.Sprintf("expected summary %q but no finding", t.ExpectSummary)
		} else if fs[0].Summary != t.ExpectSummary {
			res.Err = fmt.Sprintf("summary %q, want %q", fs[0].Summary, t.ExpectSummary)
		}
	}
	if t.ExpectSeverity != "" && res.Err == "" {
		for _, f := range fs {
			if string(f.Severity) != t.ExpectSeverity {
				res.Err = fmt.Sprintf("severity %s, want %s (%s)", f.Severity, t.ExpectSeverity, f.Summary)
				break
			}
		}
	}
	return res
}

// withTestLists recompiles r with a test's lists in place of the pack's
// lists of the same name (the rule's inline lists still win, as in a
// deployment). A name the pack does not define is an error (a typo).
func withTestLists(r *Rule, lists map[string][]string) (*Rule, error) {
	merged := make(map[string][]string, len(r.lists))
	for k, v := range r.lists {
		merged[k] = v
	}
	for k, v := range lists {
		if _, ok := r.lists[k]; !ok {
			return nil, fmt.Errorf("test list %q: the pack defines no list of that name", k)
		}
		merged[k] = v
	}
	if r.Source == nil {
		return nil, fmt.Errorf("cannot apply the test's lists: rule %s has no source", r.ID)
	}
	env, err := sharedEnv()
	if err != nil {
		return nil, err
	}
	nr, err := parseRule(env, r.File, r.Source, merged)
	if err != nil {
		return nil, fmt.Errorf("cannot compile with the test's lists: %w", err)
	}
	nr.Source = r.Source
	return nr, nil
}
