// Package shape describes the shape of a tool call's arguments as terms
// (keys and value kinds, path roots, URL hosts). The same terms feed the
// mcp-agent-outside-profile rule (the argShape CEL function of
// internal/detect) and the profiles internal/profile learns from
// ClickHouse, so the policy a gateway enforces is the profile the rule
// watches (docs/profiles.md). It imports no I/O.
package shape

import (
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

// hasScheme reports whether s starts with a URL scheme and "://"
// (^[A-Za-z][A-Za-z0-9+.-]*://, without a regular expression: it runs on
// every string argument).
func hasScheme(s string) bool {
	for i := 0; i < len(s) && i < 32; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'):
		case i > 0 && c == ':':
			return strings.HasPrefix(s[i:], "://")
		default:
			return false
		}
	}
	return false
}

// Of returns the sorted, distinct shape terms of a tool call's JSON
// arguments: one key:<path>=<kind> per key (nested objects as a.b, array
// elements as a[]; kinds string, number, bool, null, object, array), one
// root: per absolute path value and one host: per URL value. Invalid JSON
// or a non-object gives key:=<kind> of what it is, or nothing.
func Of(arguments string) []string {
	var t Terms
	Scan(&t, arguments)
	if t.Len() == 0 {
		return nil
	}
	out := make([]string, t.Len())
	for i := range out {
		out[i] = string(t.At(i))
	}
	sort.Strings(out)
	return out
}

// urlHost is secfn.URLHost (a variable for the reference test).
var urlHost = secfn.URLHost

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
	if r, ok := plainRoot(s); ok {
		return r
	}
	return pathRootSlow(s)
}

// plainRoot is PathRoot for the common case, a plain ASCII absolute POSIX
// path with nothing to decode or collapse; ok is false for anything else
// (NormalizePath's regular expressions were most of the rule's cost).
func plainRoot(s string) (string, bool) {
	if len(s) < 2 || len(s) > 4096 || (s[0] != '/' && s[0] != '~') || s[1] == '/' && s[0] == '/' {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80, c < 0x20, c == '%', c == '\\', c == '$', c == ' ', c == '"', c == '\'', c == ',', c == ';', c == '{', c == '}':
			return "", false
		}
	}
	if dotSegment(s) {
		return "", false // . and .. segments: let NormalizePath collapse them
	}
	if s[0] == '~' {
		if s[1] != '/' {
			return "", false // ~user
		}
		return "~", true
	}
	seg, rest := s[1:], ""
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		seg, rest = seg[:i], seg[i+1:]
	}
	switch {
	case strings.EqualFold(seg, "root"):
		return "~", true
	case strings.EqualFold(seg, "home") || strings.EqualFold(seg, "users"):
		if rest != "" && rest[0] != '/' {
			return "~", true // /home/<user>/...
		}
		return "", false
	case seg == "":
		return "", false
	}
	return s[:1+len(seg)], true // "/" + seg, without allocating
}

// dotSegment reports whether a slash-separated path has a "." or ".." segment.
func dotSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' || (i > 0 && s[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(s) && s[j] == '.' {
			j++
		}
		if j == len(s) || s[j] == '/' {
			return true
		}
	}
	return false
}

// pathRootSlow is PathRoot through secfn.NormalizePath.
func pathRootSlow(s string) string {
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
