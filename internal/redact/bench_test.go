package redact

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
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

// The collector's load (the benchmark harness's events): arguments with a
// path and 200 bytes of padding, a short text result, and on every 10th
// event arguments with a GitHub token as Bearer value.
var (
	loadArgs   = `{"path":"/srv/data/file-7.txt","pad":"` + strings.Repeat("x", 200) + `"}`
	loadResult = `{"content":[{"type":"text","text":"hello"}]}`
	loadDirty  = `{"url":"https://x","headers":{"Authorization":"Bearer ghp_` + strings.Repeat("aB3xY9", 6) + `"}}`
)

// BenchmarkApplyLoad: Apply on the collector's events; mix10 is one op of
// ten events (nine clean, one with a token), the others one event each.
func BenchmarkApplyLoad(b *testing.B) {
	r := mustNew(b, Config{})
	clean := event.Event{Arguments: loadArgs, Result: loadResult}
	dirty := event.Event{Arguments: loadDirty, Result: loadResult}
	// A clean event with the identity fields a real call carries (scanned
	// for secrets too).
	named := clean
	named.Method, named.ToolName, named.ServerName, named.ServiceName = "tools/call", "read_file", "filesystem", "checkout-agent"
	named.SessionID, named.SessionKey = "7f3c2a9e-1b4d-4e8f-9a0b-c1d2e3f4a5b6", "7f3c2a9e-1b4d-4e8f-9a0b-c1d2e3f4a5b6"
	named.AgentID, named.UserID, named.ClientName, named.ClientVersion = "checkout-agent/pod-7f3c", "alice@example.com", "claude-code", "1.0.71"
	named.RequestID, named.CallID, named.ProtocolVersion = "42", "c0ffee00c0ffee00c0ffee00c0ffee00", "2025-06-18"
	for _, c := range []struct {
		name   string
		events []event.Event
	}{
		{"clean", []event.Event{clean}},
		{"dirty", []event.Event{dirty}},
		{"mix10", append(slices.Repeat([]event.Event{clean}, 9), dirty)},
		{"identity", []event.Event{named}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for _, e := range c.events {
				n += len(e.Arguments) + len(e.Result)
			}
			b.SetBytes(int64(n))
			for b.Loop() {
				for _, e := range c.events {
					r.Apply(&e)
				}
			}
		})
	}
}
