package backtest

import (
	"errors"
	"fmt"
	"os"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/detect"
)

// MaxRuleBytes bounds a rule file given to a backtest.
const MaxRuleBytes = 1 << 20

// ParseRule validates and compiles one rule file's YAML the way the pack
// loader does, with the deployed pack's named lists.
func ParseRule(data []byte, lists map[string][]string) (*detect.Rule, error) {
	if len(data) == 0 {
		return nil, errors.New("cannot parse rule: empty")
	}
	if len(data) > MaxRuleBytes {
		return nil, fmt.Errorf("cannot parse rule: larger than %d bytes", MaxRuleBytes)
	}
	fsys := fstest.MapFS{"rule.yaml": {Data: data}}
	if len(lists) > 0 {
		b, err := yaml.Marshal(lists)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the pack's lists: %w", err)
		}
		fsys[detect.ListsDir+"/pack.yaml"] = &fstest.MapFile{Data: b}
	}
	p, err := detect.Load(fsys, ".")
	if err != nil {
		return nil, err
	}
	if len(p.Rules) != 1 {
		return nil, errors.New("cannot parse rule: want exactly one rule")
	}
	return p.Rules[0], nil
}

// Resolve turns what the user named — a rule file, or the id of a rule in
// pack — into the rule to try and its deployed version (the rule with the
// same id in pack; nil when there is none). A rule named by id is tried as
// deployed: every finding is then "both".
func Resolve(fileOrID string, pack *detect.Pack) (rule, deployed *detect.Rule, err error) {
	if pack == nil {
		pack = &detect.Pack{}
	}
	if st, statErr := os.Stat(fileOrID); statErr == nil && !st.IsDir() {
		if st.Size() > MaxRuleBytes {
			return nil, nil, fmt.Errorf("cannot read rule %s: larger than %d bytes", fileOrID, MaxRuleBytes)
		}
		b, err := os.ReadFile(fileOrID)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read rule %s: %w", fileOrID, err)
		}
		if rule, err = ParseRule(b, pack.Lists); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", fileOrID, err)
		}
		return rule, pack.Rule(rule.ID), nil
	}
	if r := pack.Rule(fileOrID); r != nil {
		return r, r, nil
	}
	return nil, nil, fmt.Errorf("no rule file and no rule with id %q in the configured pack", fileOrID)
}

// ParseTime reads an RFC 3339 time or a duration back from ref ("30d",
// "12h"); "" is def.
func ParseTime(s string, ref, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := detect.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 30d", s)
	}
	return ref.Add(-d), nil
}
