package redact

import (
	"strings"
	"testing"
)

// Typical tool arguments and results: mostly clean, some with a secret.
var (
	cleanArgs  = `{"path":"/srv/app/src/main.go","encoding":"utf-8","max_lines":400,"query":"find the handler that serves /api/v1/users and explain its error handling"}`
	cleanLarge = strings.Repeat(`{"line":"func handle(w http.ResponseWriter, r *http.Request) { renderTemplate(w, \"index\", data) }"},`, 40)
	dirtyArgs  = `{"url":"https://api.example.com/v1/charge","headers":{"Authorization":"Bearer ` + bearerTok + `"},"body":{"amount":100,"api_key":"` + stripeLive + `"}}`
)

func BenchmarkFind(b *testing.B) {
	r := mustNew(b, Config{})
	for _, c := range []struct{ name, s string }{{"clean_small", cleanArgs}, {"clean_4KiB", cleanLarge}, {"two_secrets", dirtyArgs}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				r.Find(c.s)
			}
		})
	}
}

// A clean 1.5 KiB result that contains trigger words ("passed", "tokens")
// but no secret: the regexps run and find nothing.
var triggeredClean = `{"content":[{"type":"text","text":"` + strings.Repeat(`All 42 tests passed; the tokenizer splits input into tokens. `, 24) + `"}],"isError":false}`

func BenchmarkFindTriggeredClean(b *testing.B) {
	r := mustNew(b, Config{})
	b.ReportAllocs()
	b.SetBytes(int64(len(triggeredClean)))
	for b.Loop() {
		if len(r.Find(triggeredClean)) != 0 {
			b.Fatal("false positive")
		}
	}
}
