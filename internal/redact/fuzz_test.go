package redact

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// FuzzRedact: never panics, never leaves a found secret in the output
// (but where the same text stands outside every match), respects the cap.
func FuzzRedact(f *testing.F) {
	// The last seed: a token that also occurs inside a longer word, which
	// is no token and must stay.
	tok := "ghp_" + strings.Repeat("a1B2", 9)
	repeated := tok + " x" + tok
	for _, s := range []string{cleanArgs, dirtyArgs, pemKey, jwt, "postgres://a:b@c", `{"password":"x\"y"}`, strings.Repeat("[", 1000), repeated} {
		f.Add(s)
	}
	r := mustNew(f, Config{MaxArgumentBytes: 256, MaxResultBytes: 256})
	f.Fuzz(func(t *testing.T, s string) {
		ms := r.Find(s)
		e := event.Event{Arguments: s, Result: s}
		r.Apply(&e)
		if len(e.Arguments) > 256 || len(e.Result) > 256 {
			t.Fatalf("cap exceeded: %d", len(e.Arguments))
		}
		if e.ArgumentsSize != uint32(len(s)) {
			t.Fatalf("size %d != %d", e.ArgumentsSize, len(s))
		}
		red, _ := r.Redact(s)
		// The text outside the matches stays as it is, so a secret may still
		// be in the output only where it also stands outside every match
		// (e.g. inside a longer word that is no token). Markers break the
		// text between segments unless the secret has a marker's brackets.
		var outside []string
		prev := 0
		for _, m := range ms {
			outside = append(outside, s[prev:m.Start])
			prev = m.End
		}
		outside = append(outside, s[prev:])
		for _, m := range ms {
			secret := s[m.Start:m.End]
			if len(secret) < 8 || !strings.Contains(red, secret) || strings.ContainsAny(secret, "[]") {
				continue
			}
			if !slices.ContainsFunc(outside, func(seg string) bool { return strings.Contains(seg, secret) }) {
				t.Fatalf("secret %q left in %q", secret, red)
			}
		}
	})
}
