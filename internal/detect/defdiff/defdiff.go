// Package defdiff reduces a tool definition to the facts a security review
// compares between two versions of it — parameter names, the hosts, email
// addresses and paths its text names, its annotation hints and the
// prompt-injection markers in it — and compares two such fact sets.
//
// A definition change is judged by what changed, not by whether the server
// bumped its version: a new parameter plus an instruction that mails data to
// an outside address is a rug pull under any version number; a reworded
// description under a new version is an upgrade. The facts are compact and
// deterministic (Encode), so the detect engine keeps them in its new_term
// baseline and the store in the tool inventory, and both diff the same way.
package defdiff

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
)

// Facts are what a definition says about its reach.
type Facts struct {
	Params  []string        `json:"p,omitempty"` // input schema property paths ("a", "a.b")
	Hosts   []string        `json:"h,omitempty"` // hosts of the URLs in the text
	Emails  []string        `json:"e,omitempty"` // email addresses in the text
	Paths   []string        `json:"f,omitempty"` // absolute or home-relative paths in the text
	Markers []string        `json:"i,omitempty"` // instruction-like text: injection marker ids, hidden-unicode
	Hints   map[string]bool `json:"a,omitempty"` // annotation hints present (readOnlyHint, destructiveHint, openWorldHint, idempotentHint)
}

// maxItems bounds each list (a definition is KiBs; the facts stay small).
const maxItems = 32

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)
	// pathRe: a POSIX absolute path of two or more segments, a home path
	// (~/x) or a Windows drive path (C:\x, C:/x), starting a word.
	pathRe = regexp.MustCompile(`(?:^|[\s"'(=:,])((?:~|/[A-Za-z0-9._\-]+)(?:/[A-Za-z0-9._\-]+)+|[A-Za-z]:[\\/][A-Za-z0-9._\-\\/]+)`)
)

var hintNames = []string{"readOnlyHint", "destructiveHint", "openWorldHint", "idempotentHint"}

// Extract computes the facts of a definition: its description, input
// schema (JSON) and annotations (JSON). Unparsable JSON contributes its
// text only.
func Extract(description, inputSchema, annotations string) Facts {
	var f Facts
	texts := []string{description}
	if inputSchema != "" {
		var v any
		if json.Unmarshal([]byte(inputSchema), &v) == nil {
			params(v, "", &f.Params)
			texts = stringsOf(v, texts)
		} else {
			texts = append(texts, inputSchema)
		}
	}
	if annotations != "" {
		var m map[string]any
		if json.Unmarshal([]byte(annotations), &m) == nil {
			for _, h := range hintNames {
				if b, ok := m[h].(bool); ok {
					if f.Hints == nil {
						f.Hints = map[string]bool{}
					}
					f.Hints[h] = b
				}
			}
			texts = stringsOf(m, texts)
		}
	}
	text := strings.Join(texts, "\n")
	for _, u := range secfn.URLs(text) {
		if h := secfn.URLHost(u); h != "" {
			f.Hosts = append(f.Hosts, h)
		}
	}
	for _, e := range emailRe.FindAllString(text, maxItems) {
		f.Emails = append(f.Emails, strings.ToLower(e))
	}
	for _, m := range pathRe.FindAllStringSubmatch(text, maxItems) {
		p := strings.TrimRight(m[1], ".,;:")
		if strings.Contains(p, "://") || strings.Count(p, "/")+strings.Count(p, `\`) < 1 {
			continue
		}
		f.Paths = append(f.Paths, p)
	}
	f.Markers = secfn.InjectionMarkers(text)
	if secfn.HasHiddenUnicode(text) {
		f.Markers = append(f.Markers, "hidden-unicode")
	}
	for _, l := range []*[]string{&f.Params, &f.Hosts, &f.Emails, &f.Paths, &f.Markers} {
		*l = tidy(*l)
	}
	return f
}

// params collects the property names of a JSON schema, nested ones dotted.
func params(v any, prefix string, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(*out) >= maxItems {
		return
	}
	props, _ := m["properties"].(map[string]any)
	for name, sub := range props {
		*out = append(*out, prefix+name)
		params(sub, prefix+name+".", out)
	}
	if items, ok := m["items"]; ok {
		params(items, prefix, out)
	}
}

// stringsOf appends every string value (not key) of a decoded JSON value.
func stringsOf(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case map[string]any:
		for _, y := range x {
			out = stringsOf(y, out)
		}
	case []any:
		for _, y := range x {
			out = stringsOf(y, out)
		}
	}
	return out
}

// tidy sorts, deduplicates and bounds a list (nil when empty).
func tidy(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	slices.Sort(l)
	l = slices.Compact(l)
	if len(l) > maxItems {
		l = l[:maxItems]
	}
	return l
}

// Encode is the facts' compact JSON (deterministic: sorted lists, sorted keys).
func (f Facts) Encode() string {
	b, _ := json.Marshal(f) // cannot fail: strings, bools
	return string(b)
}

// Decode parses Encode's output; "" or garbage gives empty facts and false.
func Decode(s string) (Facts, bool) {
	var f Facts
	if s == "" || json.Unmarshal([]byte(s), &f) != nil {
		return Facts{}, false
	}
	return f, true
}

// Diff is what changed from one definition to the next.
type Diff struct {
	ParamsAdded       []string `json:"params_added,omitempty"`
	ParamsRemoved     []string `json:"params_removed,omitempty"`
	HostsAdded        []string `json:"hosts_added,omitempty"`
	EmailsAdded       []string `json:"emails_added,omitempty"`
	PathsAdded        []string `json:"paths_added,omitempty"`
	InstructionsAdded []string `json:"instructions_added,omitempty"`
	HintsWidened      []string `json:"hints_widened,omitempty"`
	// OutsideAdded are the added hosts and email addresses whose domain the
	// previous definition did not name (docs.acme.dev → api.acme.dev is
	// not outside; a new mailbox at another domain is).
	OutsideAdded []string `json:"outside_added,omitempty"`
	// SensitivePathsAdded are added paths that name credentials or secrets.
	SensitivePathsAdded []string `json:"sensitive_paths_added,omitempty"`
}

// Compare returns what cur adds to (or removes from) prev.
func Compare(prev, cur Facts) Diff {
	d := Diff{
		ParamsAdded:       minus(cur.Params, prev.Params),
		ParamsRemoved:     minus(prev.Params, cur.Params),
		HostsAdded:        minus(cur.Hosts, prev.Hosts),
		EmailsAdded:       minus(cur.Emails, prev.Emails),
		PathsAdded:        minus(cur.Paths, prev.Paths),
		InstructionsAdded: minus(cur.Markers, prev.Markers),
	}
	known := map[string]bool{}
	for _, h := range prev.Hosts {
		known[domainOf(h)] = true
	}
	for _, e := range prev.Emails {
		known[domainOf(e[strings.LastIndexByte(e, '@')+1:])] = true
	}
	for _, h := range d.HostsAdded {
		if !known[domainOf(h)] && !secfn.IsInternalAddress(h) {
			d.OutsideAdded = append(d.OutsideAdded, h)
		}
	}
	for _, e := range d.EmailsAdded {
		if !known[domainOf(e[strings.LastIndexByte(e, '@')+1:])] {
			d.OutsideAdded = append(d.OutsideAdded, e)
		}
	}
	for _, p := range d.PathsAdded {
		if secfn.IsSensitivePath(p) {
			d.SensitivePathsAdded = append(d.SensitivePathsAdded, p)
		}
	}
	// Hints, against the MCP defaults (readOnlyHint false, destructiveHint
	// true, openWorldHint true): a claim withdrawn or a wider one made.
	ph, ch := prev.Hints, cur.Hints
	hint := func(m map[string]bool, k string) (v, ok bool) { v, ok = m[k]; return }
	if v, ok := hint(ph, "readOnlyHint"); ok && v {
		if w, _ := hint(ch, "readOnlyHint"); !w {
			d.HintsWidened = append(d.HintsWidened, "readOnlyHint: true → "+state(ch, "readOnlyHint"))
		}
	}
	for _, k := range []string{"destructiveHint", "openWorldHint"} {
		pv, pok := hint(ph, k)
		cv, cok := hint(ch, k)
		if (cok && cv && !(pok && pv)) || (pok && !pv && !(cok && !cv)) {
			d.HintsWidened = append(d.HintsWidened, k+": "+state(ph, k)+" → "+state(ch, k))
		}
	}
	return d
}

func state(m map[string]bool, k string) string {
	v, ok := m[k]
	if !ok {
		return "absent"
	}
	return fmt.Sprint(v)
}

// minus is a − b (both sorted).
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	return out
}

// twoLevelSuffixes are public suffixes of two labels common enough to
// matter for "same domain" (co.uk, com.au, …); a full public suffix list
// is not worth a dependency here.
var twoLevelSuffixes = map[string]bool{"co.uk": true, "org.uk": true, "ac.uk": true, "com.au": true, "net.au": true,
	"co.jp": true, "co.nz": true, "com.br": true, "co.in": true, "github.io": true, "herokuapp.com": true}

// domainOf is the registrable domain of a host, approximately: its last two
// labels, or three under a known two-label suffix.
func domainOf(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	labels := strings.Split(h, ".")
	n := 2
	if len(labels) >= 3 && twoLevelSuffixes[strings.Join(labels[len(labels)-2:], ".")] {
		n = 3
	}
	if len(labels) <= n {
		return h
	}
	return strings.Join(labels[len(labels)-n:], ".")
}

// Empty reports whether no fact changed (e.g. a reworded description).
func (d Diff) Empty() bool {
	return len(d.ParamsAdded)+len(d.ParamsRemoved)+len(d.HostsAdded)+len(d.EmailsAdded)+len(d.PathsAdded)+
		len(d.InstructionsAdded)+len(d.HintsWidened) == 0
}

// Widening lists why the change widens what the tool does; none means the
// diff is benign.
func (d Diff) Widening() []string {
	var w []string
	if len(d.InstructionsAdded) > 0 {
		w = append(w, "instruction-like text added")
	}
	if len(d.OutsideAdded) > 0 {
		w = append(w, "outside address added")
	}
	if len(d.HintsWidened) > 0 {
		w = append(w, "annotations widened")
	}
	if len(d.SensitivePathsAdded) > 0 {
		w = append(w, "sensitive path added")
	}
	return w
}

// Severity grades the change: critical when instruction text or an outside
// address comes with a new parameter or with each other (the supply-chain
// pattern: a new bcc parameter and "send a copy to ..."), high for any other
// widening, and for a benign diff low under a server version bump, medium
// when the version did not change or is unknown (a release that forgot to
// bump, or a server that rewrites its text at run time).
func (d Diff) Severity(versionBump bool) string {
	instr, outside := len(d.InstructionsAdded) > 0, len(d.OutsideAdded) > 0
	switch {
	case instr && (outside || len(d.ParamsAdded) > 0), outside && len(d.ParamsAdded) > 0:
		return "critical"
	case len(d.Widening()) > 0:
		return "high"
	case versionBump:
		return "low"
	}
	return "medium"
}

// String is a one-line account: "params +bcc; outside +x@evil.example; instructions +exfil-instruction".
func (d Diff) String() string {
	var parts []string
	add := func(what, sign string, l []string) {
		if len(l) > 0 {
			parts = append(parts, what+" "+sign+strings.Join(l, ","+sign))
		}
	}
	add("params", "+", d.ParamsAdded)
	add("params", "-", d.ParamsRemoved)
	add("hosts", "+", d.HostsAdded)
	add("emails", "+", d.EmailsAdded)
	add("paths", "+", d.PathsAdded)
	add("instructions", "+", d.InstructionsAdded)
	if len(d.HintsWidened) > 0 {
		parts = append(parts, "hints "+strings.Join(d.HintsWidened, ", "))
	}
	if len(parts) == 0 {
		return "text only"
	}
	return strings.Join(parts, "; ")
}
