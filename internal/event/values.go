package event

import (
	"encoding/binary"
	"hash"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// valueString renders an attribute value as a string: strings as they are,
// maps and slices as JSON (bounded in depth), others via AsString.
func valueString(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		var b []byte
		b = appendValueJSON(b, v, 0)
		return string(b)
	}
	return v.AsString()
}

// appendValueJSON writes v as JSON; nesting deeper than maxValueDepth is
// written as null so hostile input cannot exhaust the stack.
func appendValueJSON(b []byte, v pcommon.Value, depth int) []byte {
	if depth > maxValueDepth {
		return append(b, "null"...)
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendJSONString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendJSONString(b, v.AsString())
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeBytes:
		return appendJSONString(b, v.AsString())
	case pcommon.ValueTypeMap:
		b = append(b, '{')
		first := true
		v.Map().Range(func(k string, x pcommon.Value) bool {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendValueJSON(b, x, depth+1)
			return true
		})
		return append(b, '}')
	case pcommon.ValueTypeSlice:
		b = append(b, '[')
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValueJSON(b, s.At(i), depth+1)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string without HTML escaping; invalid
// UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func valueInt(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || f < math.MinInt64 || f > math.MaxInt64 {
			return 0, false
		}
		return int64(f), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// valueTime reads unix seconds (int or numeric string) or RFC 3339.
func valueTime(v pcommon.Value) time.Time {
	if n, ok := valueInt(v); ok {
		if n <= 0 || n > 1<<40 {
			return time.Time{}
		}
		return time.Unix(n, 0).UTC()
	}
	if v.Type() == pcommon.ValueTypeStr {
		if t, err := time.Parse(time.RFC3339Nano, v.Str()); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// splitScopes reads a space/comma-separated list of scopes.
func splitScopes(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	if len(f) == 0 {
		return nil
	}
	if len(f) > MaxExtraAttrs {
		f = f[:MaxExtraAttrs]
	}
	return f
}

// truncateUTF8 cuts s to at most n bytes at a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func hashString(h hash.Hash, s string) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
	h.Write(buf[:])
	h.Write([]byte(s))
}

func hashMap(h hash.Hash, m pcommon.Map, depth int) {
	keys := make([]string, 0, m.Len())
	m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	sort.Strings(keys)
	h.Write([]byte{'{'})
	for _, k := range keys {
		v, _ := m.Get(k)
		hashString(h, k)
		hashValue(h, v, depth+1)
	}
	h.Write([]byte{'}'})
}

func hashValue(h hash.Hash, v pcommon.Value, depth int) {
	h.Write([]byte{byte(v.Type())})
	if depth > maxValueDepth {
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeMap:
		hashMap(h, v.Map(), depth)
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			hashValue(h, s.At(i), depth+1)
		}
		h.Write([]byte{']'})
	case pcommon.ValueTypeBytes:
		hashString(h, string(v.Bytes().AsRaw()))
	case pcommon.ValueTypeEmpty:
	default:
		hashString(h, v.AsString())
	}
}

// complexValue builds the pdata value of an AnyValue's protobuf bytes (an
// array or map) by letting pdata decode it as a resource attribute.
func complexValue(anyValue string) pcommon.Value {
	kv := protowireAppendLen(nil, 2, anyValue)
	res := protowireAppendLen(nil, 1, string(kv))
	rs := protowireAppendLen(nil, 1, string(res))
	req := protowireAppendLen(nil, 1, string(rs))
	er := ptraceotlp.NewExportRequest()
	if err := er.UnmarshalProto(req); err != nil || er.Traces().ResourceSpans().Len() != 1 {
		return pcommon.NewValueEmpty() // validated before: not reached
	}
	v, ok := er.Traces().ResourceSpans().At(0).Resource().Attributes().Get("")
	if !ok {
		return pcommon.NewValueEmpty()
	}
	return v
}

func protowireAppendLen(b []byte, num int, v string) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3|wireLen)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// The rawVal counterparts of the helpers above: strings and ints natively,
// the rarer types through their pdata value.

// pv builds the pdata value (for the rare non-string types, so that their
// rendering is pdata's own).
func (v *rawVal) pv() pcommon.Value {
	switch v.typ {
	case pcommon.ValueTypeStr:
		return pcommon.NewValueStr(v.s)
	case pcommon.ValueTypeInt:
		return pcommon.NewValueInt(int64(v.n))
	case pcommon.ValueTypeDouble:
		return pcommon.NewValueDouble(math.Float64frombits(v.n))
	case pcommon.ValueTypeBool:
		return pcommon.NewValueBool(v.n != 0)
	case pcommon.ValueTypeBytes:
		x := pcommon.NewValueBytes()
		x.Bytes().FromRaw([]byte(v.s))
		return x
	case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
		return complexValue(v.s)
	}
	return pcommon.NewValueEmpty()
}

// Str is pcommon.Value.Str: "" unless a string.
func (v *rawVal) Str() string {
	if v.typ == pcommon.ValueTypeStr {
		return v.s
	}
	return ""
}

// str is valueString.
func (v *rawVal) str() string {
	switch v.typ {
	case pcommon.ValueTypeStr:
		return v.s
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(int64(v.n), 10)
	}
	return valueString(v.pv())
}

// short is short.
func (v *rawVal) short() string { return truncateUTF8(v.str(), MaxFieldLen) }

func (v *rawVal) int() (int64, bool) {
	switch v.typ {
	case pcommon.ValueTypeInt:
		return int64(v.n), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(strings.TrimSpace(v.s), 10, 64)
		return n, err == nil
	}
	return valueInt(v.pv())
}

func (v *rawVal) time() time.Time {
	if v.typ == pcommon.ValueTypeStr || v.typ == pcommon.ValueTypeInt {
		if n, ok := v.int(); ok {
			if n <= 0 || n > 1<<40 {
				return time.Time{}
			}
			return time.Unix(n, 0).UTC()
		}
		if v.typ == pcommon.ValueTypeStr {
			if t, err := time.Parse(time.RFC3339Nano, v.s); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	return valueTime(v.pv())
}

// strings reads an array of strings, or a space/comma-separated string.
func (v *rawVal) strings() []string {
	if v.typ != pcommon.ValueTypeSlice {
		return splitScopes(v.short())
	}
	sl := v.pv().Slice()
	out := make([]string, 0, sl.Len())
	for i := 0; i < sl.Len() && i < MaxExtraAttrs; i++ {
		out = append(out, truncateUTF8(valueString(sl.At(i)), MaxExtraValueLen))
	}
	return out
}

func getRaw(kvs []rawKV, key string) (*rawVal, bool) {
	for i := range kvs {
		if kvs[i].key == key {
			return &kvs[i].v, true
		}
	}
	return nil, false
}

// --- mapping: mapping.go on the raw representation -----------------------
