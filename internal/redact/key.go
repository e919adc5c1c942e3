package redact

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MinKeyBytes is the shortest fingerprint key accepted (256 bits).
const MinKeyBytes = 32

// LoadKey returns the fingerprint key cfg names: the value of the
// environment variable KeyEnv (through getenv), else the contents of
// KeyFile, surrounding whitespace removed. A KeyFile that does not exist
// is created (0600, never overwritten) with a new random key. With neither
// set the key is random for this process. warning, when not "", says what
// was generated and what that means; it never contains the key.
func LoadKey(cfg Config, getenv func(string) string) (key []byte, warning string, err error) {
	switch {
	case cfg.KeyEnv != "":
		key = bytes.TrimSpace([]byte(getenv(cfg.KeyEnv)))
		if len(key) == 0 {
			return nil, "", fmt.Errorf("redact.key_env: environment variable %s is empty or unset", cfg.KeyEnv)
		}
	case cfg.KeyFile != "":
		b, err := os.ReadFile(cfg.KeyFile)
		if errors.Is(err, fs.ErrNotExist) {
			if err := createKeyFile(cfg.KeyFile); err != nil {
				return nil, "", err
			}
			warning = "redact: generated a new fingerprint key in " + cfg.KeyFile +
				": give every collector of this deployment this same file, and keep it secret (with it a reader can confirm guessed secrets)"
			b, err = os.ReadFile(cfg.KeyFile)
		}
		if err != nil {
			return nil, "", fmt.Errorf("cannot read redact.key_file: %w", err)
		}
		key = bytes.TrimSpace(b)
	default:
		return randomKey(), "redact: no fingerprint key configured (redact.key_file or redact.key_env): using a random key for this process, " +
			"so [REDACTED:<kind>:<hash>] markers of equal secrets do not correlate across restarts or collectors", nil
	}
	if len(key) < MinKeyBytes {
		return nil, "", fmt.Errorf("redact: the fingerprint key has %d bytes, need at least %d (e.g. openssl rand -hex 32)", len(key), MinKeyBytes)
	}
	return key, warning, nil
}

// createKeyFile writes a new random key (64 hex digits) to path unless the
// file exists: it writes a temporary file and links it into place, so a
// collector starting at the same time reads either no file or a whole key
// (and if another one created it first, that key wins).
func createKeyFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".redact-key-*")
	if err != nil {
		return fmt.Errorf("cannot create redact.key_file: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(hex.EncodeToString(randomKey()) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write redact.key_file: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot create redact.key_file: %w", err)
	}
	return nil
}

// randomKey returns MinKeyBytes random bytes.
func randomKey() []byte {
	k := make([]byte, MinKeyBytes)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}
