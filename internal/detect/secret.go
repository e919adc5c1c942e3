package detect

import (
	"regexp"
	"strings"
	"sync"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

var (
	redactorOnce sync.Once
	redactor     *redact.Redactor // nil if it cannot be built
	markerRe     = regexp.MustCompile(`\[REDACTED:[a-z0-9_]+(?::[0-9a-f]{8})?\]`)
)

// HasSecret reports whether s contains a secret: a collector redaction
// marker "[REDACTED:<kind>:<hash>]" (events arrive redacted, so the marker
// itself counts), or a secret the collector's own detectors find
// (internal/redact, default configuration: cloud keys, tokens, private
// keys, JWTs, passwords in URLs, key=value credentials). secfn's pattern
// table is the fallback should the redactor not build.
func HasSecret(s string) bool {
	if strings.Contains(s, "[REDACTED:") && markerRe.MatchString(s) {
		return true
	}
	redactorOnce.Do(func() {
		if r, err := redact.New(redact.Config{}); err == nil {
			redactor = r
		}
	})
	if redactor == nil {
		return secfn.HasSecretPattern(s)
	}
	return len(redactor.Find(s)) > 0
}
