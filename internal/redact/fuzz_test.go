package redact

import (
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// FuzzRedact: never panics, never leaves a found secret in the output,
// respects the cap.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{cleanArgs, dirtyArgs, pemKey, jwt, "postgres://a:b@c", `{"password":"x\"y"}`, strings.Repeat("[", 1000)} {
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
		for _, m := range ms {
			secret := s[m.Start:m.End]
			if len(secret) >= 8 && strings.Contains(red, secret) && !strings.Contains(strings.ReplaceAll(s, secret, ""), secret) {
				t.Fatalf("secret %q left in %q", secret, red)
			}
		}
	})
}
