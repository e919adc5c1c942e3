package event

import (
	"errors"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

var errSyntax = errors.New("invalid JSON")

// canonicalizer writes the canonical form of in to out in one pass; object
// members are written in input order and reordered afterwards if needed.
type canonicalizer struct {
	in  []byte
	pos int
	out []byte
	key []byte // scratch for decoded keys
}

func (c *canonicalizer) ws() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(depth int) error {
	if depth > maxValueDepth {
		return errTooDeep
	}
	if c.pos >= len(c.in) {
		return errSyntax
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		s, err := c.str()
		if err != nil {
			return err
		}
		c.out = appendJSONString(c.out, s)
		return nil
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(string(c.in[c.pos:min(len(c.in), c.pos+5)]), lit) {
				c.out = append(c.out, lit...)
				c.pos += len(lit)
				return nil
			}
		}
		return errSyntax
	}
}

func (c *canonicalizer) number() error {
	start, p := c.pos, c.pos
	digits := func() int {
		n := 0
		for p < len(c.in) && c.in[p] >= '0' && c.in[p] <= '9' {
			p++
			n++
		}
		return n
	}
	if p < len(c.in) && c.in[p] == '-' {
		p++
	}
	if p < len(c.in) && c.in[p] == '0' {
		p++
	} else if digits() == 0 {
		return errSyntax
	}
	if p < len(c.in) && c.in[p] == '.' {
		p++
		if digits() == 0 {
			return errSyntax
		}
	}
	if p < len(c.in) && (c.in[p] == 'e' || c.in[p] == 'E') {
		p++
		if p < len(c.in) && (c.in[p] == '+' || c.in[p] == '-') {
			p++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	c.out = append(c.out, c.in[start:p]...)
	c.pos = p
	return nil
}

// str decodes a JSON string at c.pos the way encoding/json does (invalid
// UTF-8 bytes and lone surrogates become U+FFFD).
func (c *canonicalizer) str() (string, error) {
	c.pos++ // opening quote
	start := c.pos
	// Fast path: no escapes, all ASCII printable.
	for p := start; p < len(c.in); p++ {
		ch := c.in[p]
		if ch == '"' {
			c.pos = p + 1
			return string(c.in[start:p]), nil
		}
		if ch == '\\' || ch < 0x20 || ch >= utf8.RuneSelf {
			break
		}
	}
	b := c.key[:0]
	p := start
	for {
		if p >= len(c.in) {
			return "", errSyntax
		}
		ch := c.in[p]
		switch {
		case ch == '"':
			c.pos = p + 1
			c.key = b
			return string(b), nil
		case ch < 0x20:
			return "", errSyntax
		case ch == '\\':
			if p+1 >= len(c.in) {
				return "", errSyntax
			}
			p++
			switch c.in[p] {
			case '"', '\\', '/':
				b = append(b, c.in[p])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(c.in, p+1)
				if !ok {
					return "", errSyntax
				}
				p += 4
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if p+6 < len(c.in)+0 && c.in[p+1] == '\\' && c.in[p+2] == 'u' {
						r2, ok2 = hex4(c.in, p+3)
					}
					if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
						r = dec
						p += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", errSyntax
			}
			p++
		case ch < utf8.RuneSelf:
			b = append(b, ch)
			p++
		default:
			r, size := utf8.DecodeRune(c.in[p:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, c.in[p:p+size]...)
			}
			p += size
		}
	}
}

func hex4(b []byte, p int) (rune, bool) {
	if p+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, ch := range b[p : p+4] {
		switch {
		case ch >= '0' && ch <= '9':
			r = r<<4 | rune(ch-'0')
		case ch >= 'a' && ch <= 'f':
			r = r<<4 | rune(ch-'a'+10)
		case ch >= 'A' && ch <= 'F':
			r = r<<4 | rune(ch-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (c *canonicalizer) array(depth int) error {
	c.pos++
	c.out = append(c.out, '[')
	c.ws()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		c.ws()
		if err := c.value(depth + 1); err != nil {
			return err
		}
		c.ws()
		if c.pos >= len(c.in) {
			return errSyntax
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			return nil
		default:
			return errSyntax
		}
	}
}

type member struct {
	key        string
	start, end int // `"key":value` in out
}

func (c *canonicalizer) object(depth int) error {
	c.pos++
	c.out = append(c.out, '{')
	objStart := len(c.out)
	c.ws()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return nil
	}
	var buf [8]member
	ms := buf[:0]
	sorted := true
	for {
		c.ws()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return errSyntax
		}
		k, err := c.str()
		if err != nil {
			return err
		}
		c.ws()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return errSyntax
		}
		c.pos++
		c.ws()
		start := len(c.out)
		c.out = appendJSONString(c.out, k)
		c.out = append(c.out, ':')
		// The member value is one level deeper, as in appendCanonical.
		if err := c.value(depth + 1); err != nil {
			return err
		}
		if n := len(ms); n > 0 && ms[n-1].key >= k {
			sorted = false
		}
		ms = append(ms, member{key: k, start: start, end: len(c.out)})
		c.ws()
		if c.pos >= len(c.in) {
			return errSyntax
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.out = append(c.out, ',')
			continue
		}
		if c.in[c.pos] != '}' {
			return errSyntax
		}
		c.pos++
		break
	}
	if !sorted {
		// Stable sort by key; for duplicate keys keep the last (as a map would).
		slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		w := 0
		for i := range ms {
			if i+1 < len(ms) && ms[i+1].key == ms[i].key {
				continue
			}
			ms[w] = ms[i]
			w++
		}
		ms = ms[:w]
		body := make([]byte, 0, len(c.out)-objStart)
		for i, m := range ms {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, c.out[m.start:m.end]...)
		}
		c.out = append(c.out[:objStart], body...)
	}
	c.out = append(c.out, '}')
	return nil
}
