package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"testing"
)

// referenceCanonicalJSON is the straightforward encoding/json version of
// CanonicalJSON, kept as the oracle for the hand-written one. It re-encodes a JSON document: object keys sorted by bytes,
// no whitespace, strings escaped minimally, numbers as written. Nesting
// deeper than 32 levels is rejected.
func referenceCanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return refAppendCanonical(nil, v, 0)
}

func refAppendCanonical(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxValueDepth {
		return nil, errTooDeep
	}
	var err error
	switch x := v.(type) {
	case nil:
		b = append(b, "null"...)
	case bool:
		if x {
			b = append(b, "true"...)
		} else {
			b = append(b, "false"...)
		}
	case json.Number:
		b = append(b, x...)
	case string:
		b = appendJSONString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = refAppendCanonical(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = refAppendCanonical(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	return b, nil
}

func TestCanonicalJSONMatchesReference(t *testing.T) {
	for _, in := range canonicalSeeds {
		got, err := CanonicalJSON([]byte(in))
		want, werr := referenceCanonicalJSON([]byte(in))
		if (err == nil) != (werr == nil) || string(got) != string(want) {
			t.Errorf("CanonicalJSON(%q) = %q, %v; reference %q, %v", in, got, err, want, werr)
		}
	}
}

var canonicalSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.50`, `-12e+3`, `1E-7`, `"x"`,
	` { "b" : [1, 2.50, {"y":1,"x":2}], "a" : "<&>" } `,
	`{"a":1,"a":2}`, `{"b":1,"a":{"d":[],"c":{}}}`,
	`"\u00e9\ud83d\ude00\ud800x\u0000\n\t\"\\\/"`, "\"\xff\xfe ok\"", "\"\u2028\u2029\"",
	`{"é":1,"e":2,"E":3,"":0}`, `[1,]`, `{"a":}`, `01`, `1.`, `.5`, `-`, `1e`, `"\x"`, "\"a\nb\"", `{"a":1}x`, `{"a":1} `,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	`{"type":"object","properties":{"path":{"type":"string","description":"Path"}},"required":["path"]}`,
	`tru`, `nul`, `"unterminated`, `{"a" 1}`, `[1 2]`, ``, `   `,
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := CanonicalJSON(in)
		want, werr := referenceCanonicalJSON(in)
		if werr == nil && !json.Valid(in) {
			// The reference's Decoder.More() accepts data after the value
			// that starts with a closing bracket ("0]0"); CanonicalJSON
			// rejects any trailing data.
			return
		}
		if (err == nil) != (werr == nil) || string(got) != string(want) {
			t.Fatalf("CanonicalJSON(%q) = %q, %v; reference %q, %v", in, got, err, want, werr)
		}
	})
}
