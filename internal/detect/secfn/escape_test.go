package secfn

import (
	"strings"
	"testing"
)

func TestEscapesRoot(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		// Relative paths: escaping means a leading ".." after path.Clean.
		{"../../etc/passwd", true},
		{"src/../../secrets.env", true},
		{"..", true},
		{"a/b/../c", false},
		{"./pkg/../internal/x.go", false},
		{"docs/guide/../../README.md", false},
		{"src/a/b/../../../go.mod", false},
		{"src/a/b/../../../../go.mod", true},
		// Windows forms.
		{`src\..\..\Windows\System32\config\SAM`, true},
		{`src\lib\..\main.c`, false},
		{`C:\inetpub\wwwroot\..\..\Windows\win.ini`, true},
		{`C:\work\repo\sub\..\file.txt`, false},
		{`C:..\..\boot.ini`, true},
		{`\\fileserver\share\..\..\admin$\x`, true},
		{`\\fileserver\share\team\..\docs`, false},
		// Absolute paths: escaping means climbing back to the root.
		{"/srv/app/static/../../../root/.ssh/id_rsa", true},
		{"/tmp/../etc/shadow", true},
		{"/srv/app/sub/../config.yaml", false},
		{"~/projects/../../other/.ssh/id_rsa", true},
		{"~/projects/api/../web/index.ts", false},
		{"file:///srv/app/../../root/.ssh/id_rsa", true},
		{"file:///srv/app/assets/../index.html", false},
		{"https://cdn.example.com/a/../../../etc/passwd", true},
		{"https://cdn.example.com/a/b/../c.js", false},
		{"https://cdn.example.com/a/../c.js", false},
		{"FILE:///a/../etc/passwd", true},
		// Encoded forms.
		{"static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", true},
		{"static/%252e%252e%252f%252e%252e%252fetc%252fshadow", true},
		{"img/%2e%2e/logo.png", false},
		{"..%c0%af..%c0%afetc/passwd", true},
		{"%c0%ae%c0%ae/%c0%ae%c0%ae/etc", true},
		{"．．/．．/etc/passwd", true},
		{"..%5c..%5cwindows%5cwin.ini", true},
		// Paths inside texts and JSON.
		{`{"path":"docs/../../secret"}`, true},
		{`{"path":"docs/a/../b"}`, false},
		{"cat ../../etc/passwd", true},
		{"ls src/../lib && cat ./docs/../README.md", false},
		{"--out=../../../tmp/x", true},
		{"HEAD:../../x", true},
		// ".." inside names is no segment.
		{"docs/v1..v2-migration.md", false},
		{"git diff main...feature/retry", false},
		{"go test ./...", false},
		{"file..txt", false},
		{"", false},
	}
	for _, c := range cases {
		if got := EscapesRoot(c.in); got != c.want {
			t.Errorf("EscapesRoot(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzEscapesRoot: no panic, and an escape needs a ".." after decoding.
func FuzzEscapesRoot(f *testing.F) {
	for _, s := range []string{"../x", `C:\a\..\..\b`, `\\s\h\..\x`, "file:///a/../..", "%2e%2e/", "a/b/../c", "~/..", "x:..", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if EscapesRoot(s) && !strings.Contains(urlDecode(foldWidth(s)), "..") {
			t.Errorf("EscapesRoot(%q) without a .. after decoding", s)
		}
	})
}
