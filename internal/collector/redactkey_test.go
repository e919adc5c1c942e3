package collector

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// redactKeyConfig is a valid config whose listeners bind nothing yet (New
// does not start them).
func redactKeyConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig("testdata/minimal.yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRedactKeyPlumbing: the collector loads its fingerprint key from
// redact.key_file (created when missing, with a WARN that never holds the
// key) or redact.key_env; validation refuses both at once and an empty env
// variable; with neither, New warns that the key is random.
func TestRedactKeyPlumbing(t *testing.T) {
	cfg := redactKeyConfig(t)
	path := filepath.Join(t.TempDir(), "redact.key")
	cfg.Redact.KeyFile = path
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := New(cfg, log); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(key)) < 32 {
		t.Fatalf("key file: %q %v", key, err)
	}
	if !strings.Contains(logs.String(), "generated a new fingerprint key") || strings.Contains(logs.String(), string(bytes.TrimSpace(key))) {
		t.Fatalf("want a WARN without the key, got:\n%s", logs.String())
	}

	t.Setenv("TEST_REDACT_KEY", "")
	cfg = redactKeyConfig(t)
	cfg.Redact.KeyEnv = "TEST_REDACT_KEY"
	cfg.Redact.KeyFile = path
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "key_file and key_env") || !strings.Contains(err.Error(), "TEST_REDACT_KEY is empty") {
		t.Fatalf("both set, env empty: %v", err)
	}

	logs.Reset()
	if _, err := New(redactKeyConfig(t), log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "random key") {
		t.Fatalf("no key configured: want a WARN, got:\n%s", logs.String())
	}
}
