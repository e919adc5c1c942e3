package detect

import (
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect/defdiff"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// DiffToolDefinition is the one value of a new_term rule's `diff`: the
// rule's fields name the definition (tool_definition_hash), its group the
// tool (tenant, server_name, tool_name), and a new definition is judged by
// what changed from the previous one (defdiff), whatever the version.
//
// The term of such a rule is `hash US version US facts` (US = \x1f): the
// compact facts of the definition ride in the new_term state itself, so the
// previous definition to diff against is whatever the group holds — in
// memory, in the baselines (detection_baselines.term) after a restart, in
// the detect role's changelog after a rebalance — with no other store. A
// version bump with the same definition is a new term and no finding (the
// version change is mcp-server-version-changed's).
const DiffToolDefinition = "tool_definition"

const defSep = '\x1f'

// defReads are the event fields a diff rule reads besides its by and
// fields: the detect role's inputs must keep them whole (readsFields).
var defReads = []string{"server_version", "tool_description", "tool_input_schema", "tool_annotations"}

// maxFactsCache bounds the definition hash → facts cache.
const maxFactsCache = 4096

// defTermSuffix appends the version and the facts of ev's definition to
// a diff rule's term. Facts are cached by definition hash: definitions
// repeat (every tools/list of every session) and the hash covers the
// definition's whole text.
func (e *Engine) defTermSuffix(b []byte, ev *event.Event) []byte {
	if e.facts == nil {
		e.facts = newLRU[string](maxFactsCache, nil)
	}
	h := ev.ToolDefinitionHash
	facts, ok := e.facts.get(h)
	if !ok {
		facts = defdiff.Extract(ev.ToolDescription, ev.ToolInputSchema, ev.ToolAnnotations).Encode()
		e.facts.put(h, facts)
	}
	b = append(b, defSep)
	b = append(b, ev.ServerVersion...)
	b = append(b, defSep)
	return append(b, facts...)
}

// defTerm is a diff rule's term taken apart. A term without facts (saved
// by an older version of the rule) gives ok false.
type defTerm struct {
	hash, version string
	facts         defdiff.Facts
	ok            bool
}

func splitDefTerm(term string) defTerm {
	hash, rest, found := strings.Cut(term, string(defSep))
	if !found {
		return defTerm{hash: term}
	}
	version, facts, _ := strings.Cut(rest, string(defSep))
	f, ok := defdiff.Decode(facts)
	return defTerm{hash: hash, version: version, facts: f, ok: ok}
}

// defChange is a diff rule's finding for a new term: the tool's previous
// definition (the group's most recently seen other term) against this one.
// No finding when there is none, or when only the version changed.
func (e *Engine) defChange(rs *ruleState, g *ntGroup, term string, ev *event.Event) *event.Finding {
	var (
		prevTerm string
		prevLast time.Time
	)
	g.terms.each(func(k string, last time.Time) {
		if k != term && (prevTerm == "" || last.After(prevLast) || last.Equal(prevLast) && k > prevTerm) {
			prevTerm, prevLast = k, last
		}
	})
	if prevTerm == "" {
		return nil // the first definition of the tool
	}
	prev, cur := splitDefTerm(prevTerm), splitDefTerm(term)
	if prev.hash == cur.hash {
		return nil
	}
	r := rs.rule
	bump := prev.version != "" && cur.version != "" && prev.version != cur.version
	diff := defdiff.Compare(prev.facts, cur.facts)
	sev, change := diff.Severity(bump), diff.String()
	if !prev.ok {
		// The previous definition's facts are unknown (a baseline saved
		// before facts were kept): a change without a judgement.
		sev, change = r.Severity, "previous definition unknown"
	}
	evidence := map[string]any{
		"diff":         diff,
		"change":       change,
		"widening":     diff.Widening(),
		"version_bump": bump,
		"previous":     map[string]any{"definition_hash": prev.hash, "server_version": prev.version, "last_seen": prevLast.UTC().Format(time.RFC3339)},
		"current":      map[string]any{"definition_hash": cur.hash, "server_version": cur.version},
		"event":        evidenceOf(ev),
	}
	f := e.finding(r, ev, groupKey(r.By, ev), []string{ev.EventID}, evidence, map[string]string{"change": change, "term": cur.hash})
	f.Severity = event.Severity(sev)
	return f
}
