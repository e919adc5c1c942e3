// Package shape describes the shape of a tool call's arguments as terms
// (keys and value kinds, path roots, URL hosts). The same terms feed the
// mcp-agent-outside-profile rule (the argShape CEL function of
// internal/detect) and the profiles internal/profile learns from
// ClickHouse, so the policy a gateway enforces is the profile the rule
// watches (docs/profiles.md). It imports no I/O.
package shape

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
)

// Term prefixes of Of.
const (
	TermKey  = "key:"  // key:<path>=<kind>, e.g. key:path=string, key:opts.depth=number
	TermRoot = "root:" // root:<first segment of an absolute path>, e.g. root:/srv, root:~, root:..
	TermHost = "host:" // host:<lower-case host of a URL>
)

// Bounds: arguments are capped by the collector, these keep one call's
// shape small whatever its JSON holds.
const (
	maxDepth = 3  // nested keys deeper than this are not described
	maxTerms = 64 // terms per call
)

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// Of returns the sorted, distinct shape terms of a tool call's JSON
// arguments: one key:<path>=<kind> per key (nested objects as a.b, array
// elements as a[]; kinds string, number, bool, null, object, array), one
// root: per absolute path value and one host: per URL value. Invalid JSON
// or a non-object gives key:=<kind> of what it is, or nothing.
func Of(arguments string) []string {
	s := strings.TrimSpace(arguments)
	if s == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return []string{TermKey + "=invalid"}
	}
	set := map[string]struct{}{}
	var walk func(path string, x any, depth int)
	walk = func(path string, x any, depth int) {
		if len(set) >= maxTerms {
			return
		}
		if path != "" {
			set[TermKey+path+"="+kindOf(x)] = struct{}{}
		}
		switch t := x.(type) {
		case map[string]any:
			if depth >= maxDepth {
				return
			}
			for k, y := range t {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, y, depth+1)
			}
		case []any:
			if depth >= maxDepth {
				return
			}
			for _, y := range t {
				walk(path+"[]", y, depth+1)
			}
		case string:
			if r := PathRoot(t); r != "" {
				set[TermRoot+r] = struct{}{}
			} else if schemeRE.MatchString(t) {
				if h := secfn.URLHost(t); h != "" {
					set[TermHost+h] = struct{}{}
				}
			}
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return []string{TermKey + "=" + kindOf(v)}
	}
	walk("", v, 0)
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	if len(out) > maxTerms {
		out = out[:maxTerms]
	}
	return out
}

func kindOf(x any) string {
	switch x.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "unknown"
}

var driveRE = regexp.MustCompile(`^[a-z]:(/|~)`)

// PathRoot returns the root of a path-like value after normalisation
// (decoding, slashes, home forms, "..": secfn.NormalizePath): "/srv" for
// /srv/app/x, "~" for a home directory, "c:/windows" for C:\Windows\x, ".."
// for a path that climbs out of where it starts; "" when the value is not
// an absolute or climbing path (plain words, relative names, URLs).
func PathRoot(s string) string {
	if len(s) < 2 || len(s) > 4096 || strings.ContainsAny(s, "\n\t") {
		return ""
	}
	c := s[0]
	looks := c == '/' || c == '~' || c == '\\' || c == '$' || c == '%' || strings.HasPrefix(s, "file://") ||
		strings.HasPrefix(s, "..") || (len(s) > 2 && s[1] == ':' && (s[2] == '\\' || s[2] == '/'))
	if !looks || strings.HasPrefix(s, "//") {
		return ""
	}
	p := secfn.NormalizePath(s)
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		return "~"
	case p == ".." || strings.HasPrefix(p, "../"):
		return ".."
	case strings.HasPrefix(p, "/"):
		seg := p[1:]
		if i := strings.IndexByte(seg, '/'); i >= 0 {
			seg = seg[:i]
		}
		if seg == "" || strings.ContainsAny(seg, " \"'") {
			return "/"
		}
		return "/" + seg
	case driveRE.MatchString(p):
		if p[2] == '~' {
			return p[:2] + "~"
		}
		seg := p[3:]
		if i := strings.IndexByte(seg, '/'); i >= 0 {
			seg = seg[:i]
		}
		return p[:3] + strings.ToLower(seg) // Windows paths ignore case
	}
	return ""
}
