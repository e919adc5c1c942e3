package secfn

var secretSet = newPatSet("", []string{
	`\[REDACTED:[a-z0-9_]+(?::[0-9a-f]{8})?\]`,
	`\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`,
	`\bgh[pousr]_[A-Za-z0-9]{36,}\b`, `\bgithub_pat_[A-Za-z0-9_]{40,}\b`,
	`\bglpat-[A-Za-z0-9_-]{20,}\b`,
	`\bxox[abposr]-[A-Za-z0-9-]{10,}\b`,
	`-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----`,
	`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`,
	`\bAIza[0-9A-Za-z_-]{35}\b`,
	`\b(?:sk|rk)_live_[0-9a-zA-Z]{20,}\b`,
	`\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{32,}\b`,
	`\bnpm_[A-Za-z0-9]{36}\b`, `\bpypi-[A-Za-z0-9_-]{50,}\b`,
	`[a-z][a-z0-9+.-]*://[^/\s:@"']+:[^/\s@"']{3,}@[^\s"']+`,
	`(?i)\b(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|password|passwd)\\?["']?\s*[:=]\s*\\?["']?[A-Za-z0-9/+_.\-]{12,}`,
})

// HasSecretPattern reports secrets by pattern: AWS access keys, GitHub,
// GitLab, Slack, Stripe, OpenAI/Anthropic and npm/PyPI tokens, private key
// blocks, JWTs, passwords in URLs, key=value credentials, and the
// collector's redaction marker "[REDACTED:<kind>:<hash>]".
func HasSecretPattern(s string) bool { return secretSet.match(s, lower(s)) }
