package shape

import (
	"encoding/json"
	"strings"
)

// scanner walks a valid JSON text (json.Valid) and appends its shape terms
// without decoding it into values: the rule computes the shape of most tool
// calls, and decoding into map[string]any cost several times the rest of
// the rule (detections/bench_test.go). Terms come in document order,
// deduplicated, at most maxTerms.
type scanner struct {
	s    string
	i    int
	path []byte // key path of the current value
	term []byte // scratch for one term
	out  []string
}

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// add appends term (prefix + body) unless present or the bound is reached.
func (sc *scanner) add(parts ...string) {
	if len(sc.out) >= maxTerms {
		return
	}
	b := sc.term[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	sc.term = b
	for _, t := range sc.out {
		if t == string(b) {
			return
		}
	}
	sc.out = append(sc.out, string(b))
}

// str reads a string token at sc.i ('"') and returns its text: a substring
// when it has no escapes, else the decoded value.
func (sc *scanner) str() string {
	start := sc.i + 1
	esc := false
	j := start
	for ; j < len(sc.s); j++ {
		c := sc.s[j]
		if c == '\\' {
			esc = true
			j++
			continue
		}
		if c == '"' {
			break
		}
	}
	sc.i = j + 1
	if !esc {
		return sc.s[start:j]
	}
	var v string
	if json.Unmarshal([]byte(sc.s[start-1:j+1]), &v) != nil {
		return ""
	}
	return v
}

// skip moves past the value at sc.i.
func (sc *scanner) skip() {
	switch c := sc.s[sc.i]; c {
	case '"':
		sc.str()
	case '{', '[':
		depth := 0
		for sc.i < len(sc.s) {
			switch sc.s[sc.i] {
			case '"':
				sc.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					sc.i++
					return
				}
			}
			sc.i++
		}
	default: // number, true, false, null
		for sc.i < len(sc.s) && !strings.ContainsRune(",}] \t\n\r", rune(sc.s[sc.i])) {
			sc.i++
		}
	}
}

// value describes the value at sc.i, whose key path is sc.path.
func (sc *scanner) value(depth int) {
	kind := ""
	switch c := sc.s[sc.i]; {
	case c == '{':
		kind = "object"
	case c == '[':
		kind = "array"
	case c == '"':
		kind = "string"
	case c == 't' || c == 'f':
		kind = "bool"
	case c == 'n':
		kind = "null"
	default:
		kind = "number"
	}
	if depth > 0 {
		sc.add(TermKey, string(sc.path), "=", kind)
	}
	switch kind {
	case "string":
		v := sc.str()
		if r := PathRoot(v); r != "" {
			sc.add(TermRoot, r)
		} else if hasScheme(v) {
			if h := urlHost(v); h != "" {
				sc.add(TermHost, h)
			}
		}
		return
	case "object", "array":
		if depth >= maxDepth {
			sc.skip()
			return
		}
	default:
		sc.skip()
		return
	}
	closer := byte('}')
	if kind == "array" {
		closer = ']'
	}
	base := len(sc.path)
	sc.i++
	for {
		sc.ws()
		if sc.i >= len(sc.s) || sc.s[sc.i] == closer {
			sc.i++
			break
		}
		if sc.s[sc.i] == ',' {
			sc.i++
			continue
		}
		if kind == "object" {
			k := sc.str()
			sc.ws()
			sc.i++ // ':'
			sc.ws()
			if base > 0 {
				sc.path = append(sc.path, '.')
			}
			sc.path = append(sc.path, k...)
		} else {
			sc.path = append(sc.path, "[]"...)
		}
		sc.value(depth + 1)
		sc.path = sc.path[:base]
	}
}
