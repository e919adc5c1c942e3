package redact

import (
	"bytes"
	"regexp"
	"strings"
)

// Kinds of secrets the built-in detectors find. The kind appears in the
// replacement ([REDACTED:<kind>:<hash>]) and in the tag secret:<kind>.
const (
	KindAWSAccessKeyID  = "aws_access_key_id"
	KindAWSSecretKey    = "aws_secret_access_key"
	KindGCPAPIKey       = "gcp_api_key"
	KindGCPServiceAcct  = "gcp_service_account_key"
	KindAzureStorageKey = "azure_storage_key"
	KindAzureClientSec  = "azure_client_secret"
	KindGitHubToken     = "github_token"
	KindSlackToken      = "slack_token"
	KindSlackWebhook    = "slack_webhook"
	KindAnthropicKey    = "anthropic_api_key"
	KindOpenAIKey       = "openai_api_key"
	KindStripeKey       = "stripe_key"
	KindJWT             = "jwt"
	KindPrivateKey      = "private_key"
	KindURLPassword     = "url_password"
	KindBearer          = "bearer_token"
	KindBasicAuth       = "basic_auth"
	KindGeneric         = "generic_secret"
)

// detector is one secret pattern. The regexp runs only when one of the
// triggers occurs in the text (ASCII case-insensitively when fold is set):
// most text contains none, so most text costs a few substring scans.
type detector struct {
	kind     string
	triggers []string
	fold     bool
	re       *regexp.Regexp
	group    int               // submatch holding the secret; 0 = whole match
	valid    func(string) bool // optional post-filter on the secret
	keyGroup int               // submatch holding a key name checked by validKey
	validKey func(string) bool
	// scan, when set, replaces re: a linear hand-written matcher that
	// reports key and secret offsets (the generic rules, whose regexps
	// would have no literal prefix and cost O(text × pattern)). It starts
	// at from, the first occurrence of one of the triggers: no match of a
	// scanner begins before its triggers do.
	scan   func(s string, from int, out []span) []span // appends to out
	tag    string                                      // secret:<kind>
	mask   uint64                                      // the detector's trigger bits in the Redactor's prefilter
	always bool                                        // no (trackable) triggers: always run
}

// builtin returns the built-in detectors in priority order: when two
// matches overlap, the one from the earlier detector wins (so an Anthropic
// key is not also an OpenAI key, a JWT inside a Bearer value is a JWT).
func builtin() []detector {
	return []detector{
		{kind: KindPrivateKey, triggers: []string{"PRIVATE KEY"},
			re: regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]{16,})`)},
		{kind: KindJWT, triggers: []string{"eyJ"},
			re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
		{kind: KindAWSAccessKeyID, triggers: []string{"AKIA", "ASIA", "ABIA", "ACCA", "A3T"},
			re: regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b`)},
		{kind: KindAWSSecretKey, triggers: []string{"aws"}, fold: true,
			re:    regexp.MustCompile(`(?i)aws.{0,20}?(?:secret|private).{0,20}?["'\s]*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)`),
			group: 1, valid: mixedCase},
		{kind: KindGCPAPIKey, triggers: []string{"AIza"},
			re: regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{35}`)},
		{kind: KindGCPServiceAcct, triggers: []string{"private_key_id"},
			re: regexp.MustCompile(`"private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})`), group: 1},
		{kind: KindAzureStorageKey, triggers: []string{"accountkey"}, fold: true,
			re: regexp.MustCompile(`(?i)AccountKey=([A-Za-z0-9+/]{86}==)`), group: 1},
		{kind: KindAzureClientSec, triggers: []string{"Q~"},
			re: regexp.MustCompile(`(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)`), group: 1},
		// Same language as githubTokenPattern (a hand-written scan: the regexp
		// with its {36,255} bounds runs on the NFA and costs ~10 µs per text).
		{kind: KindGitHubToken, triggers: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"},
			scan: scanGitHubTokensFrom},
		{kind: KindSlackWebhook, triggers: []string{"hooks.slack.com"},
			re: regexp.MustCompile(`https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,}`)},
		{kind: KindSlackToken, triggers: []string{"xox"},
			re: regexp.MustCompile(`\bxox[abposr]-(?:[0-9]+-)?[A-Za-z0-9-]{10,}`), valid: hasDigit},
		{kind: KindAnthropicKey, triggers: []string{"sk-ant-"},
			re: regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_\-]{32,}`)},
		{kind: KindOpenAIKey, triggers: []string{"sk-"},
			re:    regexp.MustCompile(`\bsk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{40,}|[A-Za-z0-9]{32,})`),
			valid: func(s string) bool { return hasDigit(s) && mixedCase(s) && !strings.HasPrefix(s, "sk-ant-") }},
		{kind: KindStripeKey, triggers: []string{"_live_", "_test_", "whsec_"},
			re: regexp.MustCompile(`\b(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}|whsec_[A-Za-z0-9]{24,})`)},
		{kind: KindURLPassword, triggers: []string{"://"},
			scan: scanURLPasswordsFrom, valid: notPlaceholder},
		{kind: KindBearer, triggers: []string{"bearer"}, fold: true,
			scan: scanBearerFrom, valid: hasDigit},
		{kind: KindBasicAuth, triggers: []string{"basic"}, fold: true,
			re:    regexp.MustCompile(`(?i)authorization\\?["']?\s*[:=]\s*\\?["']?basic\s+([A-Za-z0-9+/]{8,}={0,2})`),
			group: 1},
		// "password": "…", "api_key": "…" (also with escaped quotes inside a
		// JSON string) and password=… / token=… in URLs, env and CLIs.
		{kind: KindGeneric, triggers: []string{"pass", "secret", "token", "api_key", "apikey", "api-key", "access_key", "access-key", "accesskey", "private_key", "private-key", "privatekey", "pwd", "credential", "authorization"}, fold: true,
			scan: scanJSONPairsFrom, valid: notPlaceholder, validKey: secretKey},
		{kind: KindGeneric, triggers: []string{"pass", "secret", "token", "api_key", "apikey", "api-key", "pwd"}, fold: true,
			scan: scanKeyEqualsFrom, valid: notPlaceholder, validKey: secretKey},
	}
}

// genericKeyExcluded lists key endings that name something about a secret
// rather than the secret itself ("token_type": "Bearer", "max_tokens").
var genericKeyExcluded = []string{"count", "type", "len", "length", "limit", "size", "expires", "expiry",
	"expires_in", "expires_at", "url", "uri", "endpoint", "path", "file", "name", "id", "at", "hint", "tokens",
	"tokenizer", "usage", "policy", "required", "enabled", "format", "header", "prefix", "ttl"}

// secretKey reports whether a key that mentions a secret word names the
// secret itself (not its type, count, expiry, ...).
func secretKey(k string) bool {
	var buf [128]byte
	l, ok := lowerInto(&buf, k)
	if !ok {
		l = []byte(strings.ToLower(k))
	}
	if bytes.HasSuffix(l, []byte("key")) {
		return true
	}
	for _, x := range genericKeyExcluded {
		if bytes.HasSuffix(l, []byte(x)) {
			return false
		}
	}
	return true
}

// lowerInto writes k with ASCII letters lowered into buf, if it fits.
func lowerInto(buf *[128]byte, k string) ([]byte, bool) {
	if len(k) > len(buf) {
		return nil, false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(k)], true
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}

func mixedCase(s string) bool {
	var lower, upper bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		lower = lower || c >= 'a' && c <= 'z'
		upper = upper || c >= 'A' && c <= 'Z'
	}
	return lower && upper
}

// notPlaceholder rejects values that are obviously not secrets: already
// redacted, templated, masked, or too short.
func notPlaceholder(s string) bool {
	if len(s) < 4 {
		return false
	}
	l := strings.ToLower(s)
	switch l {
	case "null", "none", "true", "false", "undefined", "changeme", "password", "secret", "token",
		"redacted", "<redacted>", "xxxx", "xxxxxx", "xxxxxxxx", "example", "string":
		return false
	}
	if strings.HasPrefix(s, "[REDACTED") || strings.HasPrefix(s, "${") || strings.HasPrefix(s, "{{") ||
		strings.HasPrefix(s, "$(") || strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		return false
	}
	if strings.Trim(s, "*xX•.-_ ") == "" {
		return false
	}
	allDigits := true
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			allDigits = false
			break
		}
	}
	return !allDigits
}

// JSON keys that name a secret contain one of these (lowercase).
var jsonSecretWords = newWordSet([]string{"password", "passwd", "pwd", "secret", "token", "api_key", "api-key", "apikey",
	"access_key", "access-key", "accesskey", "private_key", "private-key", "privatekey", "credential", "authorization"})

// key=value keys that name a secret contain one of these (lowercase).
var kvSecretWords = newWordSet([]string{"password", "passwd", "pwd", "secret", "token", "api_key", "api-key", "apikey"})

// Byte classes of the scanners: one table load per byte tested.
const (
	clsAlnum  = 1 << iota // [A-Za-z0-9]
	clsWord               // [A-Za-z0-9_]
	clsKey                // [A-Za-z0-9_.-]
	clsScheme             // [A-Za-z0-9+.-]
	clsToken              // [A-Za-z0-9._~+/-]
	clsSpace              // space \t \n \r
)

var charClass = func() (t [256]uint8) {
	for c := range 256 {
		b := byte(c)
		alnum := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
		for cls, in := range map[uint8]bool{
			clsAlnum:  alnum,
			clsWord:   alnum || b == '_',
			clsKey:    alnum || b != 0 && strings.IndexByte("_.-", b) >= 0,
			clsScheme: alnum || b != 0 && strings.IndexByte("+.-", b) >= 0,
			clsToken:  alnum || b != 0 && strings.IndexByte("-._~+/", b) >= 0,
			clsSpace:  b != 0 && strings.IndexByte(" \t\n\r", b) >= 0,
		} {
			if in {
				t[c] |= cls
			}
		}
	}
	return t
}()

func isKeyChar(c byte) bool { return charClass[c]&clsKey != 0 }

func isSpace(c byte) bool { return charClass[c]&clsSpace != 0 }

// hasWordFold reports whether key contains one of the words, ignoring
// ASCII case.
func hasWordFold(key string, words *wordSet) bool {
	var buf [128]byte
	l, ok := lowerInto(&buf, key)
	if !ok {
		return false
	}
	for i, c := range l {
		for _, w := range words[c] {
			if len(l)-i >= len(w) && string(l[i:i+len(w)]) == w {
				return true
			}
		}
	}
	return false
}

// wordSet holds lowercase words by their first byte.
type wordSet [256][]string

func newWordSet(words []string) *wordSet {
	var ws wordSet
	for _, w := range words {
		ws[w[0]] = append(ws[w[0]], w)
	}
	return &ws
}

// scanJSONPairs finds "key": "value" pairs (also with escaped quotes, as in
// JSON inside a JSON string) whose key names a secret, and reports the value.
// The value ends at the first " or \".
func scanJSONPairs(s string) []span { return scanJSONPairsFrom(s, 0, nil) }

func scanJSONPairsFrom(s string, from int, out []span) []span {
	for i := from; i < len(s); i++ {
		c := strings.IndexByte(s[i:], ':')
		if c < 0 {
			break
		}
		i += c
		j := i - 1
		for j >= 0 && isSpace(s[j]) {
			j--
		}
		if j < 0 || s[j] != '"' {
			continue
		}
		keyEnd := j
		if j > 0 && s[j-1] == '\\' {
			keyEnd = j - 1
		}
		k := keyEnd - 1
		for k >= 0 && isKeyChar(s[k]) {
			k--
		}
		keyStart := k + 1
		if keyStart == keyEnd || k < 0 || s[k] != '"' || !hasWordFold(s[keyStart:keyEnd], jsonSecretWords) {
			continue
		}
		v := i + 1
		for v < len(s) && isSpace(s[v]) {
			v++
		}
		switch {
		case v+1 < len(s) && s[v] == '\\' && s[v+1] == '"':
			v += 2
		case v < len(s) && s[v] == '"':
			v++
		default:
			continue
		}
		start, end := v, -1
		// Commonly the value has no backslash before its closing quote.
		q := strings.IndexByte(s[v:], '"')
		if q >= 0 && strings.IndexByte(s[v:v+q], '\\') < 0 {
			end = v + q
		}
		for p := v; end < 0 && p < len(s); p++ {
			if s[p] == '"' {
				end = p
				break
			}
			if s[p] == '\\' {
				if p+1 < len(s) && s[p+1] == '"' {
					end = p
					break
				}
				p++
			}
		}
		if end > start {
			out = append(out, span{keyStart, keyEnd, start, end})
			i = end
		}
	}
	return out
}

// scanKeyEquals finds key=value where the key names a secret (password=…,
// --api-key=…, DB_PASSWORD=…, ?access_token=…) and reports the value, which
// ends at & whitespace " ' \ , or ;.
func scanKeyEquals(s string) []span { return scanKeyEqualsFrom(s, 0, nil) }

func scanKeyEqualsFrom(s string, from int, out []span) []span {
	for i := max(from, 1); i < len(s); i++ {
		e := strings.IndexByte(s[i:], '=')
		if e < 0 {
			break
		}
		i += e
		k := i - 1
		for k >= 0 && isKeyChar(s[k]) {
			k--
		}
		keyStart := k + 1
		if keyStart == i || !hasWordFold(s[keyStart:i], kvSecretWords) {
			continue
		}
		end := i + 1
		for end < len(s) {
			c := s[end]
			if c == '&' || isSpace(c) || c == '"' || c == '\'' || c == '\\' || c == ',' || c == ';' {
				break
			}
			end++
		}
		if end-(i+1) >= 4 {
			out = append(out, span{keyStart, i, i + 1, end})
			i = end
		}
	}
	return out
}

// span locates a key and its secret value in a text.
type span struct{ keyStart, keyEnd, start, end int }

func isSchemeChar(c byte) bool { return charClass[c]&clsScheme != 0 }

func isWordChar(c byte) bool { return charClass[c]&clsWord != 0 }

// scanURLPasswords finds scheme://user:password@ and reports the password
// (scheme: a letter then 1-20 of [A-Za-z0-9+.-], at a word boundary; user
// and password: 1-256 bytes without whitespace, quotes, backslash, / and @;
// the user also without :).
func scanURLPasswords(s string) []span { return scanURLPasswordsFrom(s, 0, nil) }

func scanURLPasswordsFrom(s string, from int, out []span) []span {
	for i := from; i+3 <= len(s); i++ {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			break
		}
		i += j
		// Scheme: the longest run of scheme chars before "://" (up to 21),
		// starting with a letter at a word boundary.
		k := i
		for k > 0 && i-k < 21 && isSchemeChar(s[k-1]) {
			k--
		}
		for k < i && !(s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z') || k < i && k > 0 && isWordChar(s[k-1]) && isWordChar(s[k]) {
			k++
		}
		if i-k < 2 {
			continue
		}
		// user
		u := i + 3
		p := u
		for p < len(s) && p-u < 256 && !stopUserinfo(s[p]) && s[p] != ':' {
			p++
		}
		if p == u || p >= len(s) || s[p] != ':' {
			continue
		}
		start := p + 1
		q := start
		for q < len(s) && q-start < 256 && !stopUserinfo(s[q]) {
			q++
		}
		if q == start || q >= len(s) || s[q] != '@' {
			continue
		}
		out = append(out, span{keyStart: u, keyEnd: p, start: start, end: q})
		i = q
	}
	return out
}

func stopUserinfo(c byte) bool {
	return c == '@' || c == '/' || c == '"' || c == '\'' || c == '\\' || isSpace(c) || c == '\f'
}

func isTokenChar(c byte) bool { return charClass[c]&clsToken != 0 }

// scanBearer finds "bearer" (any case, at a word start) followed by
// whitespace and a token of 16+ token68 chars (plus trailing =), and
// reports the token.
func scanBearer(s string) []span { return scanBearerFrom(s, 0, nil) }

func scanBearerFrom(s string, from int, out []span) []span {
	for i := from; i+7 < len(s); i++ {
		if s[i]|0x20 != 'b' || (i > 0 && isWordChar(s[i-1])) {
			continue
		}
		if !equalFoldLower(s[i:i+6], "bearer") {
			continue
		}
		p := i + 6
		if p >= len(s) || !(isSpace(s[p]) || s[p] == '\f') {
			continue
		}
		for p < len(s) && (isSpace(s[p]) || s[p] == '\f') {
			p++
		}
		start := p
		for p < len(s) && isTokenChar(s[p]) {
			p++
		}
		if p-start < 16 {
			continue
		}
		for p < len(s) && s[p] == '=' {
			p++
		}
		out = append(out, span{keyStart: i, keyEnd: i + 6, start: start, end: p})
		i = p - 1
	}
	return out
}

// githubTokenPattern is the language scanGitHubTokens recognises (kept for
// the equivalence test).
const githubTokenPattern = `\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b`

func isAlnum(c byte) bool { return charClass[c]&clsAlnum != 0 }

// scanGitHubTokens finds gh[pousr]_ + 36-255 alphanumerics and github_pat_
// + 60-255 word chars, each at word boundaries on both sides, and reports
// the whole token (the leftmost-first matches of githubTokenPattern).
func scanGitHubTokens(s string) []span { return scanGitHubTokensFrom(s, 0, nil) }

func scanGitHubTokensFrom(s string, from int, out []span) []span {
	for i := from; i+4 <= len(s); i++ {
		j := strings.IndexByte(s[i:], 'g')
		if j < 0 {
			break
		}
		i += j
		if i+4 > len(s) || i > 0 && isWordChar(s[i-1]) {
			continue
		}
		var p, min int
		word := false
		switch {
		case s[i+1] == 'h' && s[i+3] == '_' && (s[i+2] == 'p' || s[i+2] == 'o' || s[i+2] == 'u' || s[i+2] == 's' || s[i+2] == 'r'):
			p, min = i+4, 36
		case strings.HasPrefix(s[i:], "github_pat_"):
			p, min, word = i+11, 60, true
		default:
			continue
		}
		q := p
		if word {
			for q < len(s) && isWordChar(s[q]) {
				q++
			}
		} else {
			for q < len(s) && isAlnum(s[q]) {
				q++
			}
		}
		if n := q - p; n < min || n > 255 || q < len(s) && isWordChar(s[q]) {
			continue
		}
		out = append(out, span{keyStart: i, keyEnd: i, start: i, end: q})
		i = q - 1
	}
	return out
}
