package detect

import "regexp"

// secretRe is the engine's own secret detector. Events arrive redacted by the
// collector, so the redaction marker itself counts as a secret.
// TODO(E): use redact.(*Redactor).Find once internal/redact lands, keeping the marker check.
var secretRe = regexp.MustCompile(`\[REDACTED:[a-z0-9_]+(?::[0-9a-f]{8})?\]` +
	`|\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b` +
	`|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b` +
	`|\bglpat-[A-Za-z0-9_-]{20,}\b` +
	`|\bxox[abposr]-[A-Za-z0-9-]{10,}\b` +
	`|-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----` +
	`|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}` +
	`|\bAIza[0-9A-Za-z_-]{35}\b` +
	`|\b(?:sk|rk)_live_[0-9a-zA-Z]{20,}\b` +
	`|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{32,}\b` +
	`|\bnpm_[A-Za-z0-9]{36}\b|\bpypi-[A-Za-z0-9_-]{50,}\b` +
	`|[a-z][a-z0-9+.-]*://[^/\s:@"']+:[^/\s@"']{3,}@[^\s"']+` +
	`|(?i)\b(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|password|passwd)\\?["']?\s*[:=]\s*\\?["']?[A-Za-z0-9/+_.\-]{12,}`)

// HasSecret reports whether s contains a secret (cloud keys, tokens, private
// keys, JWTs, passwords in URLs, key=value credentials) or a collector
// redaction marker "[REDACTED:<kind>:<hash>]".
func HasSecret(s string) bool { return secretRe.MatchString(s) }
