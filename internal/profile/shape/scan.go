package shape

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Terms holds the shape terms of one call in one buffer, so that checking
// them against a learned profile allocates nothing (Scan). Reuse it.
type Terms struct {
	buf  []byte
	ends []int
	path []byte // the scanner's key path buffer, kept for reuse
}

// Len is the number of terms.
func (t *Terms) Len() int { return len(t.ends) }

// At returns term i (valid until the next Scan).
func (t *Terms) At(i int) []byte {
	start := 0
	if i > 0 {
		start = t.ends[i-1]
	}
	return t.buf[start:t.ends[i]]
}

// Scan fills t with the terms of arguments: the terms of Of, in document
// order instead of sorted.
func Scan(t *Terms, arguments string) {
	t.buf, t.ends = t.buf[:0], t.ends[:0]
	s := strings.TrimSpace(arguments)
	if s == "" {
		return
	}
	if !json.Valid([]byte(s)) {
		t.buf = append(t.buf, TermKey+"=invalid"...)
		t.ends = append(t.ends, len(t.buf))
		return
	}
	if s[0] != '{' {
		var v any
		_ = json.Unmarshal([]byte(s), &v)
		t.buf = append(append(t.buf, TermKey+"="...), kindOf(v)...)
		t.ends = append(t.ends, len(t.buf))
		return
	}
	sc := scanner{s: s, t: t, path: t.path[:0]}
	sc.value(0)
	t.path = sc.path
}

// scanner walks a valid JSON text (json.Valid) and appends its shape terms
// without decoding it into values: the rule computes the shape of most tool
// calls, and decoding into map[string]any cost several times the rest of
// the rule (detections/bench_test.go). Terms come in document order,
// deduplicated, at most maxTerms.
type scanner struct {
	s    string
	i    int
	path []byte // key path of the current value
	t    *Terms
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

// add appends the term a+b+c+d unless present or the bound is reached.
func (sc *scanner) add(a, b, c, d string) {
	t := sc.t
	if len(t.ends) >= maxTerms {
		return
	}
	start := len(t.buf)
	t.buf = append(append(append(append(t.buf, a...), b...), c...), d...)
	term := t.buf[start:]
	for i := range t.ends {
		if bytes.Equal(t.At(i), term) {
			t.buf = t.buf[:start]
			return
		}
	}
	t.ends = append(t.ends, len(t.buf))
}

// addKey appends key:<path>=<kind>.
func (sc *scanner) addKey(kind string) {
	t := sc.t
	if len(t.ends) >= maxTerms {
		return
	}
	start := len(t.buf)
	t.buf = append(append(append(append(t.buf, TermKey...), sc.path...), '='), kind...)
	term := t.buf[start:]
	for i := range t.ends {
		if bytes.Equal(t.At(i), term) {
			t.buf = t.buf[:start]
			return
		}
	}
	t.ends = append(t.ends, len(t.buf))
}

// str reads a string token at sc.i ('"') and returns its text: a substring
// when it has no escapes, else the decoded value.
func (sc *scanner) str() string { return sc.strIf(nil) }

// strIf is str that decodes an escaped text only when want(raw) says its
// value may matter ("" otherwise).
func (sc *scanner) strIf(want func(raw string) bool) string {
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
	if !esc && utf8.ValidString(sc.s[start:j]) {
		return sc.s[start:j]
	}
	// Escapes or invalid UTF-8 (which decoding replaces by U+FFFD, as
	// every JSON reader of the arguments does).
	if want != nil && !want(sc.s[start:j]) {
		return ""
	}
	var v string
	if json.Unmarshal([]byte(sc.s[start-1:j+1]), &v) != nil {
		return ""
	}
	return v
}

func never(string) bool { return false }

// skip moves past the value at sc.i (without decoding anything).
func (sc *scanner) skip() {
	switch c := sc.s[sc.i]; c {
	case '"':
		sc.strIf(never)
	case '{', '[':
		depth := 0
		for sc.i < len(sc.s) {
			switch sc.s[sc.i] {
			case '"':
				sc.strIf(never)
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
		sc.addKey(kind)
	}
	switch kind {
	case "string":
		v := sc.strIf(mayLocate)
		if r := PathRoot(v); r != "" {
			sc.add(TermRoot, r, "", "")
		} else if hasScheme(v) {
			if h := urlHost(v); h != "" {
				sc.add(TermHost, h, "", "")
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

// Reset empties t.
func (t *Terms) Reset() { t.buf, t.ends = t.buf[:0], t.ends[:0] }

// Append adds a term (no deduplication).
func (t *Terms) Append(term string) {
	t.buf = append(t.buf, term...)
	t.ends = append(t.ends, len(t.buf))
}

// mayLocate reports from a string's escaped JSON text whether its value
// can be a path or a URL (PathRoot, hasScheme), so that the many escaped
// texts that cannot (messages, file contents) are not decoded. An escape
// starts with a backslash, so up to the first one the text is the value.
func mayLocate(raw string) bool {
	if raw == "" {
		return false
	}
	switch raw[0] {
	case '/', '~', '\\', '$', '%', '.':
		return true
	}
	if len(raw) > 1 && raw[1] == ':' {
		return true // a drive letter
	}
	for i := 0; i < len(raw) && i < 32; i++ {
		c := raw[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'):
		case i > 0 && c == ':':
			return i+1 < len(raw) && (raw[i+1] == '/' || raw[i+1] == '\\')
		default:
			return false
		}
	}
	return false
}
