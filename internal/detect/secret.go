package detect

import "github.com/mcpwatch/mcpwatch/internal/detect/secfn"

// HasSecret reports whether s contains a secret or a collector redaction
// marker (events arrive redacted, so the marker itself counts).
// TODO(E): also consult redact.(*Redactor).Find once internal/redact lands.
func HasSecret(s string) bool { return secfn.HasSecretPattern(s) }
