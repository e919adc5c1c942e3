package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// Fake secrets are assembled at run time so that no scanner mistakes this
// file for a leak; they have the real shapes.
var (
	awsKeyID     = "AKIA" + "IOSFODNN7EXAMPL2"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
	gcpKey       = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
	azureStorage = strings.Repeat("Ab3+", 21) + "x/==" // 86 chars + ==
	azureSecret  = "abc8Q~" + "Zx1yW2vU3tS4rQ5pO6nM7lK8jI9hG0fE1d"
	ghp          = "ghp_" + "1234567890abcdefghijABCDEFGHIJ123456"
	ghPAT        = "github_pat_" + "11ABCDEFG0123456789_" + strings.Repeat("aB3", 20) + "xy"
	slackBot     = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackHook    = "https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
	anthropic    = "sk-ant-" + "api03-" + strings.Repeat("Ab1_", 22)
	openaiProj   = "sk-proj-" + strings.Repeat("Xy7-aB3_", 8)
	openaiLegacy = "sk-" + "T3BlbkFJ" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
	stripeLive   = "sk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQr"
	jwt          = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ" + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	pemKey       = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9\nAbCdEfGh==\n-----END RSA " + "PRIVATE KEY-----"
	bearerTok    = "d8e8fca2dc0f896fd7cb4cb0031ba249"
)

// testKey is the fingerprint key of the tests' redactors (mustNew).
var testKey = []byte("mcpwatch test fingerprint key, 32+ bytes")

// h8 is the fingerprint of s under testKey: HMAC-SHA256, first 4 bytes.
func h8(s string) string {
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

func red(kind, secret string) string { return "[REDACTED:" + kind + ":" + h8(secret) + "]" }

func mustNew(t testing.TB, c Config) *Redactor {
	t.Helper()
	r, err := NewKeyed(c, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDetectors(t *testing.T) {
	r := mustNew(t, Config{})
	cases := []struct {
		name, in, want string
		kinds          []string
	}{
		// Positive cases: one or more per kind.
		{"aws key id", `{"key":"` + awsKeyID + `"}`, `{"key":"` + red(KindAWSAccessKeyID, awsKeyID) + `"}`, []string{KindAWSAccessKeyID}},
		{"aws secret env", "AWS_SECRET_ACCESS_KEY=" + awsSecret, "AWS_SECRET_ACCESS_KEY=" + red(KindAWSSecretKey, awsSecret), []string{KindAWSSecretKey}},
		{"aws secret json", `{"aws_secret_access_key": "` + awsSecret + `"}`, `{"aws_secret_access_key": "` + red(KindAWSSecretKey, awsSecret) + `"}`, []string{KindAWSSecretKey}},
		{"gcp api key", "key=" + gcpKey + "&q=1", "key=" + red(KindGCPAPIKey, gcpKey) + "&q=1", []string{KindGCPAPIKey}},
		{"gcp service account", `{"type":"service_account","private_key_id":"` + strings.Repeat("a1", 20) + `"}`, `{"type":"service_account","private_key_id":"` + red(KindGCPServiceAcct, strings.Repeat("a1", 20)) + `"}`, []string{KindGCPServiceAcct}},
		{"azure storage", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + azureStorage + ";", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + red(KindAzureStorageKey, azureStorage) + ";", []string{KindAzureStorageKey}},
		{"azure client secret", `{"clientSecret":"` + azureSecret + `"}`, `{"clientSecret":"` + red(KindAzureClientSec, azureSecret) + `"}`, []string{KindAzureClientSec}},
		{"github ghp", "token " + ghp + " end", "token " + red(KindGitHubToken, ghp) + " end", []string{KindGitHubToken}},
		{"github pat", ghPAT, red(KindGitHubToken, ghPAT), []string{KindGitHubToken}},
		{"slack bot", "SLACK=" + slackBot, "SLACK=" + red(KindSlackToken, slackBot), []string{KindSlackToken}},
		{"slack webhook", `{"url":"` + slackHook + `"}`, `{"url":"` + red(KindSlackWebhook, slackHook) + `"}`, []string{KindSlackWebhook}},
		{"anthropic", "ANTHROPIC_API_KEY " + anthropic, "ANTHROPIC_API_KEY " + red(KindAnthropicKey, anthropic), []string{KindAnthropicKey}},
		{"openai project", "use " + openaiProj, "use " + red(KindOpenAIKey, openaiProj), []string{KindOpenAIKey}},
		{"openai legacy", openaiLegacy, red(KindOpenAIKey, openaiLegacy), []string{KindOpenAIKey}},
		{"stripe", "stripe " + stripeLive, "stripe " + red(KindStripeKey, stripeLive), []string{KindStripeKey}},
		{"jwt", "id_token: " + jwt, "id_token: " + red(KindJWT, jwt), []string{KindJWT}},
		{"pem", `{"content":"` + strings.ReplaceAll(pemKey, "\n", `\n`) + `"}`, `{"content":"` + red(KindPrivateKey, strings.ReplaceAll(pemKey, "\n", `\n`)) + `"}`, []string{KindPrivateKey}},
		{"pem raw newlines", pemKey, red(KindPrivateKey, pemKey), []string{KindPrivateKey}},
		{"url password", `{"url":"postgres://admin:S3cr3tPw@db.internal:5432/app"}`, `{"url":"postgres://admin:` + red(KindURLPassword, "S3cr3tPw") + `@db.internal:5432/app"}`, []string{KindURLPassword}},
		{"bearer", "Authorization: Bearer " + bearerTok, "Authorization: Bearer " + red(KindBearer, bearerTok), []string{KindBearer}},
		{"bearer jwt is a jwt", "Authorization: Bearer " + jwt, "Authorization: Bearer " + red(KindJWT, jwt), []string{KindJWT}},
		{"basic auth", `{"headers":{"Authorization":"Basic dXNlcjpwYXNzd29yZA=="}}`, `{"headers":{"Authorization":"Basic ` + red(KindBasicAuth, "dXNlcjpwYXNzd29yZA==") + `"}}`, []string{KindBasicAuth}},
		{"generic password json", `{"username":"bob","password":"hunter2!"}`, `{"username":"bob","password":"` + red(KindGeneric, "hunter2!") + `"}`, []string{KindGeneric}},
		{"generic api_key json", `{"api_key": "abcd-1234-efgh"}`, `{"api_key": "` + red(KindGeneric, "abcd-1234-efgh") + `"}`, []string{KindGeneric}},
		{"generic escaped json", `{"body":"{\"client_secret\":\"zz9-top\"}"}`, `{"body":"{\"client_secret\":\"` + red(KindGeneric, "zz9-top") + `\"}"}`, []string{KindGeneric}},
		{"generic key=value", "mysql -u root --password=Tr0ub4dor", "mysql -u root --password=" + red(KindGeneric, "Tr0ub4dor"), []string{KindGeneric}},
		{"generic query", "https://x.example/cb?access_token=Zm9vYmFy123&x=1", "https://x.example/cb?access_token=" + red(KindGeneric, "Zm9vYmFy123") + "&x=1", []string{KindGeneric}},
		{"two kinds", awsKeyID + " " + ghp, red(KindAWSAccessKeyID, awsKeyID) + " " + red(KindGitHubToken, ghp), []string{KindAWSAccessKeyID, KindGitHubToken}},

		// Negative cases.
		{"git sha", "commit 3f53d8b0c1a2e4f5d6c7b8a9e0f1d2c3b4a5e6f7 fixed it", "", nil},
		{"sk- in prose", "use sk-learn for this; the task-management risk-assessment is fine", "", nil},
		{"sk- hyphenated words", "sk-this-is-a-very-long-hyphenated-phrase-with-many-words", "", nil},
		{"uuid", `{"id":"123e4567-e89b-12d3-a456-426614174000"}`, "", nil},
		{"url without password", "see https://user@example.com/path and git@github.com:org/repo.git", "", nil},
		{"bearer word in prose", "the bearer of this letter is welcome", "", nil},
		{"token_type", `{"token_type":"Bearer","expires_in":3600,"max_tokens":"1000"}`, "", nil},
		{"password placeholder", `{"password":"${DB_PASSWORD}","secret":"[REDACTED:aws_access_key_id:12345678]"}`, "", nil},
		{"password masked", `{"password":"********"}`, "", nil},
		{"tokens number", "max_tokens=4096 temperature=0.2", "", nil},
		{"author", `{"author":"Jane Doe"}`, "", nil},
		{"akia lowercase word", "the akiazzzzzzzzzzzzzzz word", "", nil},
		{"ghp_ short", "ghp_short", "", nil},
		{"xox in text", "xoxo hugs and kisses", "", nil},
		{"begin public key", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----", "", nil},
		{"jwt-like prose", "eyJustKidding.notatoken", "", nil},
		{"aws without secret context", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY is a 40-char string", "", nil},
		{"plain path", `{"path":"/etc/hosts"}`, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, kinds := r.Redact(c.in)
			want := c.want
			if want == "" {
				want = c.in
			}
			if got != want {
				t.Errorf("Redact(%q)\n got  %q\n want %q", c.in, got, want)
			}
			if strings.Join(kinds, ",") != strings.Join(c.kinds, ",") {
				t.Errorf("kinds = %v, want %v", kinds, c.kinds)
			}
			ms := r.Find(c.in)
			if len(ms) != len(c.kinds) {
				t.Errorf("Find found %d matches, want %d", len(ms), len(c.kinds))
			}
			for _, m := range ms {
				if h8(c.in[m.Start:m.End]) != m.Hash {
					t.Errorf("match %+v: hash does not fit the matched bytes", m)
				}
			}
		})
	}
	// Every built-in kind has at least one positive case above.
	covered := map[string]bool{}
	for _, c := range cases {
		for _, k := range c.kinds {
			covered[k] = true
		}
	}
	for _, k := range Kinds() {
		if !covered[k] {
			t.Errorf("kind %s has no positive case", k)
		}
	}
}

func TestEqualSecretsCorrelate(t *testing.T) {
	r := mustNew(t, Config{})
	a, _ := r.Redact("first " + ghp)
	b, _ := r.Redact(`{"t":"` + ghp + `"}`)
	if !strings.Contains(a, red(KindGitHubToken, ghp)) || !strings.Contains(b, red(KindGitHubToken, ghp)) {
		t.Fatalf("same secret must give the same marker: %q %q", a, b)
	}
}

func TestApply(t *testing.T) {
	r := mustNew(t, Config{})
	args := `{"url":"https://api.example.com","headers":{"Authorization":"Bearer ` + bearerTok + `"},"aws":"` + awsKeyID + `"}`
	e := event.Event{
		Arguments:  args,
		Result:     `{"ok":true,"note":"` + ghp + `"}`,
		AttrKeys:   []string{"http.request.header.authorization", "plain"},
		AttrValues: []string{"Bearer " + jwt, "nothing here at all"},
	}
	e.ArgumentsSize = uint32(len(args))
	r.Apply(&e)
	for _, s := range []string{bearerTok, awsKeyID, ghp, jwt} {
		if strings.Contains(e.Arguments+e.Result+strings.Join(e.AttrValues, ""), s) {
			t.Errorf("secret %q survived", s)
		}
	}
	want := `{"url":"https://api.example.com","headers":{"Authorization":"Bearer ` + red(KindBearer, bearerTok) + `"},"aws":"` + red(KindAWSAccessKeyID, awsKeyID) + `"}`
	if e.Arguments != want {
		t.Errorf("arguments\n got  %s\n want %s", e.Arguments, want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(e.Arguments), &v); err != nil {
		t.Errorf("redacted JSON no longer parses: %v", err)
	}
	if e.ArgumentsSize != uint32(len(args)) {
		t.Errorf("arguments_size = %d, want original %d", e.ArgumentsSize, len(args))
	}
	if e.ResultSize != uint32(len(`{"ok":true,"note":"`+ghp+`"}`)) {
		t.Errorf("result_size = %d not set to the original size", e.ResultSize)
	}
	for _, tag := range []string{"secret:bearer_token", "secret:aws_access_key_id", "secret:github_token", "secret:jwt"} {
		if !e.HasTag(tag) {
			t.Errorf("missing tag %s in %v", tag, e.Tags)
		}
	}
	if len(e.Tags) != 4 {
		t.Errorf("tags = %v, want 4", e.Tags)
	}
	if e.AttrValues[1] != "nothing here at all" {
		t.Errorf("clean attribute changed: %q", e.AttrValues[1])
	}
}

func TestSizeCap(t *testing.T) {
	r := mustNew(t, Config{MaxArgumentBytes: 100, MaxResultBytes: 64})
	big := `{"data":"` + strings.Repeat("é", 200) + `","tail":"` + ghp + `"}`
	e := event.Event{Arguments: big, ArgumentsSize: uint32(len(big)), Result: strings.Repeat("x", 60)}
	r.Apply(&e)
	if len(e.Arguments) > 100 {
		t.Errorf("arguments not capped: %d bytes", len(e.Arguments))
	}
	if !strings.HasSuffix(e.Arguments, TruncatedMarker) {
		t.Errorf("no truncation marker: %q", e.Arguments)
	}
	if !strings.HasPrefix(e.Arguments, `{"data":"éé`) || !utf8Valid(e.Arguments) {
		t.Errorf("truncated value not a clean prefix: %q", e.Arguments)
	}
	if e.ArgumentsSize != uint32(len(big)) {
		t.Errorf("arguments_size %d, want original %d", e.ArgumentsSize, len(big))
	}
	if !e.HasTag("truncated:arguments") || e.HasTag("truncated:result") {
		t.Errorf("tags %v", e.Tags)
	}
	// The secret past the cap is still found (it is inside the scan slack).
	if !e.HasTag("secret:github_token") {
		t.Errorf("secret beyond the cap not tagged: %v", e.Tags)
	}
	if e.Result != strings.Repeat("x", 60) {
		t.Errorf("result under the cap changed")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestTruncateNeverSplitsMarkersOrEscapes(t *testing.T) {
	marker := red(KindJWT, jwt)
	s := "abc " + marker + " tail"
	for max := len(TruncatedMarker) + 1; max < len(s); max++ {
		got := Truncate(s, max)
		if len(got) > max {
			t.Fatalf("max %d: got %d bytes", max, len(got))
		}
		body := strings.TrimSuffix(got, TruncatedMarker)
		if strings.Contains(body, "[REDACTED:") && !strings.Contains(body, marker) {
			t.Fatalf("max %d: partial marker in %q", max, got)
		}
	}
	esc := `{"a":"x\u00e9\"y"}`
	for max := len(TruncatedMarker) + 1; max < len(esc); max++ {
		body := strings.TrimSuffix(Truncate(esc, max), TruncatedMarker)
		if i := strings.LastIndex(body, `\`); i >= 0 {
			rest := body[i:]
			if strings.HasPrefix(rest, `\u`) && len(rest) < 6 || len(rest) < 2 {
				t.Fatalf("max %d: partial escape at end of %q", max, body)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	r := mustNew(t, Config{DisabledDetectors: []string{KindGeneric, KindAWSAccessKeyID}})
	if got, _ := r.Redact(`{"password":"hunter22"} ` + awsKeyID); strings.Contains(got, "REDACTED") {
		t.Errorf("disabled detectors still ran: %s", got)
	}
	r = mustNew(t, Config{Rules: []Rule{
		{Kind: "internal_token", Pattern: `\b(itk_[a-f0-9]{16})\b`, Triggers: []string{"itk_"}},
		{Kind: "employee_id", Pattern: `EMP-\d{6}`},
	}})
	got, kinds := r.Redact("t=itk_0123456789abcdef by EMP-123456")
	if got != "t="+red("internal_token", "itk_0123456789abcdef")+" by "+red("employee_id", "EMP-123456") {
		t.Errorf("extra rules: %s", got)
	}
	if strings.Join(kinds, ",") != "internal_token,employee_id" {
		t.Errorf("kinds %v", kinds)
	}
	_, err := New(Config{DisabledDetectors: []string{"nope"}, MaxArgumentBytes: -1, MaxResultBytes: -5,
		Rules: []Rule{{Kind: "Bad Kind", Pattern: "("}, {Kind: "ok", Pattern: ""}}})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{`unknown detector "nope"`, "max_argument_bytes", "max_result_bytes", "rules[0].kind", "rules[0].pattern", "rules[1].pattern"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	d := mustNew(t, Config{})
	if d.maxArgs != DefaultMaxBytes || d.maxResult != DefaultMaxBytes {
		t.Errorf("defaults %d %d", d.maxArgs, d.maxResult)
	}
}

// TestBuiltinTriggersTracked: every built-in detector is gated by the
// one-pass prefilter (none falls back to always running its regexp).
func TestBuiltinTriggersTracked(t *testing.T) {
	r := mustNew(t, Config{})
	for _, d := range r.detectors {
		if d.always || d.mask == 0 {
			t.Errorf("detector %s runs always", d.kind)
		}
	}
	r = mustNew(t, Config{Rules: []Rule{{Kind: "x", Pattern: "x=(\\d+)", Triggers: []string{"x"}}}})
	if !r.detectors[len(r.detectors)-1].always {
		t.Error("a one-byte trigger must make the rule always run")
	}
	if got, _ := r.Redact("abc x=12345"); got != "abc x="+red("x", "12345") {
		t.Errorf("one-byte trigger rule: %s", got)
	}
}

// TestScannersMatchRegexps: the hand-written url_password and bearer
// scanners agree with the regexps they replaced on tricky inputs.
func TestScannersMatchRegexps(t *testing.T) {
	for _, in := range scannerSeeds {
		checkScanners(t, in)
	}
}

var (
	urlRE    = regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:@/"'\\]{1,256}:([^\s@/"'\\]{1,256})@`)
	bearerRE = regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)`)
)

func FuzzScanners(f *testing.F) {
	for _, s := range scannerSeeds {
		f.Add(s)
	}
	f.Fuzz(checkScanners)
}

func checkScanners(t *testing.T, in string) {
	{
		for _, c := range []struct {
			re   *regexp.Regexp
			scan func(string) []span
		}{{urlRE, scanURLPasswords}, {bearerRE, scanBearer}} {
			var want [][2]int
			for _, m := range c.re.FindAllStringSubmatchIndex(in, -1) {
				want = append(want, [2]int{m[2], m[3]})
			}
			var got [][2]int
			for _, sp := range c.scan(in) {
				got = append(got, [2]int{sp.start, sp.end})
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%q: scanner %v, regexp %v", in, got, want)
			}
		}
	}
}

var scannerSeeds = []string{
	"postgres://admin:S3cr3t@db", "xhttps://u:p@h", "_https://u:p@h", "a.b+c-d://u:pw@h", "1http://u:p@h",
	strings.Repeat("s", 30) + "://u:p@h", "mongodb+srv://user:pa:ss@h", "http://u:@h", "http://:p@h",
	"http://u:p/x@h", "see https://a:b@c and ftp://d:e@f", "://u:p@h", "h://u:p@h", "hh://u:p@h",
	"Bearer abcdefghijklmnop1", "xbearer abcdefghijklmnop1", "BEARER\t\tabc.def-ghi_jkl~mno+pq/r==", "bearer short1",
	"Authorization: bearer " + jwt, "bearer\nabcdefghijklmnopq9==x", "bearerabcdefghijklmnop1",
}
