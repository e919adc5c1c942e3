package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// mapCall maps one tools/call span with the given attributes through the
// real mapping and redacts it.
func mapCall(t *testing.T, r *Redactor, attrs map[string]string) event.Event {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetKind(ptrace.SpanKindClient)
	sp.Attributes().PutStr("mcp.method.name", "tools/call")
	for k, v := range attrs {
		sp.Attributes().PutStr(k, v)
	}
	b := event.FromTraces(td, event.MapOptions{})
	if len(b.Events) != 1 {
		t.Fatalf("%d events (dropped %v)", len(b.Events), b.DropReasons)
	}
	e := b.Events[0]
	r.Apply(&e)
	return e
}

// storedStrings is every string of e that reaches storage.
func storedStrings(e *event.Event) []string {
	out := []string{e.Arguments, e.Result, e.ToolDescription}
	for _, p := range e.IdentityStrings() {
		out = append(out, *p)
	}
	out = append(out, e.Scopes...)
	out = append(out, e.AttrValues...)
	return append(out, e.Tenant)
}

func TestSecuritySecretInToolName(t *testing.T) {
	r := mustNew(t, Config{})
	e := mapCall(t, r, map[string]string{"gen_ai.tool.name": "call-" + anthropic})
	eq := "call-" + red(KindAnthropicKey, anthropic)
	if e.ToolName != eq || !e.HasTag("secret:"+KindAnthropicKey) {
		t.Fatalf("tool_name = %q tags %v, want %q and secret:%s", e.ToolName, e.Tags, eq, KindAnthropicKey)
	}
}

// TestSecuritySecretInSessionID: a session id that is a bearer token (a
// JWT, a GitHub token) is stored as its marker, and two calls of the
// session still share one session id and session key.
func TestSecuritySecretInSessionID(t *testing.T) {
	r := mustNew(t, Config{})
	for _, tok := range []string{jwt, ghp, "Bearer " + bearerTok} {
		a := mapCall(t, r, map[string]string{"mcp.session.id": tok, "gen_ai.tool.name": "a"})
		b := mapCall(t, r, map[string]string{"mcp.session.id": tok, "gen_ai.tool.name": "b"})
		for _, e := range []event.Event{a, b} {
			for _, s := range storedStrings(&e) {
				if strings.Contains(s, strings.TrimPrefix(tok, "Bearer ")) {
					t.Errorf("token stored in the clear: %q", s)
				}
			}
		}
		if !strings.Contains(a.SessionID, "[REDACTED:") || a.SessionID != b.SessionID || a.SessionKey != b.SessionKey {
			t.Errorf("session ids %q / %q, keys %q / %q: want one redacted, correlating id", a.SessionID, b.SessionID, a.SessionKey, b.SessionKey)
		}
	}
}

func TestSecuritySecretInUserID(t *testing.T) {
	r := mustNew(t, Config{})
	e := mapCall(t, r, map[string]string{"user.id": awsKeyID, "mcp.client.name": "cursor"})
	want := red(KindAWSAccessKeyID, awsKeyID)
	if e.UserID != want {
		t.Errorf("user_id = %q, want %q", e.UserID, want)
	}
	// The agent id derived from user and client carries the same marker.
	if e.AgentID != want+"@cursor" {
		t.Errorf("agent_id = %q, want %q", e.AgentID, want+"@cursor")
	}
	for _, s := range storedStrings(&e) {
		if strings.Contains(s, awsKeyID) {
			t.Errorf("key stored in the clear: %q", s)
		}
	}
	// Plain ids (UUIDs, names) are left alone.
	e = mapCall(t, r, map[string]string{"user.id": "alice@example.com", "mcp.session.id": "7f3c2a9e-1b4d-4e8f-9a0b-c1d2e3f4a5b6"})
	if e.UserID != "alice@example.com" || e.SessionID != "7f3c2a9e-1b4d-4e8f-9a0b-c1d2e3f4a5b6" {
		t.Errorf("plain ids changed: %q %q", e.UserID, e.SessionID)
	}
}

// TestSecurityFingerprintGuessConfirmation: a reader of the data who
// guesses the secret cannot confirm the guess from the marker without the
// key (the unkeyed SHA-256 prefix no longer matches, other keys give other
// fingerprints), while two redactors (two collectors) with the same key
// give equal secrets equal markers.
func TestSecurityFingerprintGuessConfirmation(t *testing.T) {
	password := "hunter2hunter2"
	text := "postgres://app:" + password + "@db:5432/app"
	key := []byte(strings.Repeat("k", MinKeyBytes))
	a, _ := NewKeyed(Config{}, key)
	b, _ := NewKeyed(Config{}, append([]byte(nil), key...))
	other, _ := NewKeyed(Config{}, []byte(strings.Repeat("o", MinKeyBytes)))
	ra, _ := a.Redact(text)
	rb, _ := b.Redact(text)
	ro, _ := other.Redact(text)
	if ra != rb {
		t.Fatalf("same key, same secret, different markers: %q %q", ra, rb)
	}
	if ra == ro || !strings.Contains(ra, "[REDACTED:"+KindURLPassword+":") {
		t.Fatalf("markers %q and %q: want keyed fingerprints", ra, ro)
	}
	sum := sha256.Sum256([]byte(password))
	if strings.Contains(ra, hex.EncodeToString(sum[:4])) {
		t.Fatalf("%q: the unkeyed sha256 prefix of the guess confirms it", ra)
	}
	// A random-key redactor (New) never produces the unkeyed fingerprint either.
	rn, _ := mustNewRandom(t).Redact(text)
	if strings.Contains(rn, hex.EncodeToString(sum[:4])) {
		t.Fatalf("%q: New fell back to an unkeyed fingerprint", rn)
	}
	if _, err := NewKeyed(Config{}, []byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func mustNewRandom(t *testing.T) *Redactor {
	t.Helper()
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSecurityFingerprintKeyLoading: the key file is created once (0600)
// and then reused, so restarts and other collectors sharing it correlate;
// the env variable wins over nothing; short or empty keys are refused; no
// warning ever holds the key.
func TestSecurityFingerprintKeyLoading(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "redact.key")
	k1, warn, err := LoadKey(Config{KeyFile: path}, os.Getenv)
	if err != nil || len(k1) < MinKeyBytes || !strings.Contains(warn, "generated") {
		t.Fatalf("first load: key %d bytes, warning %q, err %v", len(k1), warn, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	k2, warn2, err := LoadKey(Config{KeyFile: path}, os.Getenv)
	if err != nil || string(k1) != string(k2) || warn2 != "" {
		t.Fatalf("second load: same key %v, warning %q, err %v", string(k1) == string(k2), warn2, err)
	}
	if strings.Contains(warn, string(k1)) {
		t.Fatal("the warning holds the key")
	}
	env := map[string]string{"K": "  " + strings.Repeat("e", 40) + "\n", "SHORT": "abc"}
	k3, warn3, err := LoadKey(Config{KeyEnv: "K"}, func(k string) string { return env[k] })
	if err != nil || string(k3) != strings.Repeat("e", 40) || warn3 != "" {
		t.Fatalf("env key: %q %q %v", k3, warn3, err)
	}
	for _, c := range []Config{{KeyEnv: "SHORT"}, {KeyEnv: "UNSET"}} {
		if _, _, err := LoadKey(c, func(k string) string { return env[k] }); err == nil || strings.Contains(err.Error(), "abc") {
			t.Errorf("%+v: err %v, want a refusal that does not quote the value", c, err)
		}
	}
	k4, warn4, err := LoadKey(Config{}, os.Getenv)
	k5, _, _ := LoadKey(Config{}, os.Getenv)
	if err != nil || len(k4) < MinKeyBytes || string(k4) == string(k5) || !strings.Contains(warn4, "random key") {
		t.Fatalf("no key configured: %d bytes, warning %q, err %v", len(k4), warn4, err)
	}
	if _, err := New(Config{KeyFile: path, KeyEnv: "K"}); err == nil {
		t.Fatal("key_file and key_env together were accepted")
	}
}
