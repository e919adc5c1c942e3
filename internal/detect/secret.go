package detect

import (
	"sync"

	"github.com/mcpwatch/mcpwatch/internal/detect/secfn"
	"github.com/mcpwatch/mcpwatch/internal/redact"
)

var (
	redactorOnce sync.Once
	redactor     *redact.Redactor // nil if it cannot be built
)

// HasSecret reports whether s contains a secret: one the collector's
// redactor finds (internal/redact, default detectors), one of secfn's own
// patterns, or a collector redaction marker "[REDACTED:<kind>:<hash>]"
// (events arrive redacted, so the marker itself counts).
func HasSecret(s string) bool {
	if secfn.HasSecretPattern(s) {
		return true
	}
	redactorOnce.Do(func() {
		r, err := redact.New(redact.Config{})
		if err == nil {
			redactor = r
		}
	})
	return redactor != nil && len(redactor.Find(s)) > 0
}
