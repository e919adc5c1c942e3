package secfn

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"unsafe"
)

// foldWidth maps fullwidth ASCII forms (U+FF01–U+FF5E) and a few look-alike
// separators onto ASCII, so "／etc／passwd" matches like "/etc/passwd".
func foldWidth(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0
		case r == 0x3000:
			r = ' '
		case r == 0x2215 || r == 0x2044: // division slash, fraction slash
			r = '/'
		case r == 0x2024: // one dot leader
			r = '.'
		case r == 0xFE68 || r == 0x29F5: // small/reverse solidus
			r = '\\'
		case isInvisible(r):
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// urlDecode undoes percent-encoding up to 3 times (double and triple
// encoding) and the IIS %uXXXX form.
func urlDecode(s string) string {
	for i := 0; i < 3 && strings.IndexByte(s, '%') >= 0; i++ {
		t := s
		if strings.Contains(t, "%u") || strings.Contains(t, "%U") {
			t = percentU.ReplaceAllStringFunc(t, func(m string) string {
				var r rune
				for _, c := range m[2:] {
					r = r<<4 | rune(hexVal(byte(c)))
				}
				return string(r)
			})
		}
		// Overlong UTF-8 encodings of '.' and '/' (%c0%ae, %c0%af, %e0%80%ae).
		t = overlong.ReplaceAllStringFunc(t, func(m string) string {
			if strings.HasSuffix(strings.ToLower(m), "ae") {
				return "."
			}
			return "/"
		})
		d, err := url.PathUnescape(t)
		if err != nil {
			d = lenientUnescape(t)
		}
		if d == s {
			break
		}
		s = d
	}
	return s
}

var percentU = regexp.MustCompile(`%[uU][0-9a-fA-F]{4}`)
var overlong = regexp.MustCompile(`(?i)%c0%a[ef]|%e0%80%a[ef]|%c1%9c`)

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// lenientUnescape decodes valid %XX sequences and keeps invalid ones.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(hexVal(s[i+1])<<4 | hexVal(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var homeForms = regexp.MustCompile(`(?i)(\$\{?home\}?|%userprofile%|%homepath%|\$env:userprofile|/users/[^/"'\s]+|/home/[^/"'\s]+|^/root|([\s"'=:])/root)(/|$)`)
var driveForm = regexp.MustCompile(`(?i)(^|[\s"'=:])([a-z]):/`)

// NormalizePath makes a path (or a text holding paths) comparable: it
// URL-decodes (also double encoding, %uXXXX and overlong UTF-8), folds
// fullwidth characters, turns backslashes into slashes, lower-cases Windows
// drive letters ("C:\x" → "c:/x"), strips file://, replaces home directory
// forms ($HOME, %USERPROFILE%, /home/<u>, /Users/<u>, /root) by "~", removes
// NUL bytes and, for a single path, collapses "." and ".." segments.
func NormalizePath(s string) string {
	s = urlDecode(foldWidth(s))
	s = strings.ReplaceAll(s, "\x00", "")
	s = strings.ReplaceAll(s, `\\`, "/")
	s = strings.ReplaceAll(s, `\`, "/")
	s = strings.TrimPrefix(s, "file://")
	s = driveForm.ReplaceAllStringFunc(s, strings.ToLower)
	s = homeForms.ReplaceAllStringFunc(s, func(m string) string {
		pre := ""
		if m[0] != '/' && m[0] != '$' && m[0] != '%' {
			pre = m[:1]
		}
		if strings.HasSuffix(m, "/") {
			return pre + "~/"
		}
		return pre + "~"
	})
	if !strings.ContainsAny(s, " \t\n\"',;{}") && s != "" {
		c := path.Clean(s)
		if strings.HasSuffix(s, "/") && c != "/" {
			c += "/"
		}
		s = c
	}
	return s
}

var traversalSeg = regexp.MustCompile(`(^|[/"'\s=:])\.\.(/|$|["'\s,;])`)
var rawTraversal = regexp.MustCompile(`(?i)%c0%ae|%e0%80%ae|%uff0e|%u002e|\.\.%c0%af|\.\.%5c|\.\.%2f|%2e%2e`)

// HasTraversal reports whether s contains a ".." path segment, after
// decoding (percent, double percent, %uXXXX, overlong UTF-8, fullwidth) and
// with backslashes treated as separators.
func HasTraversal(s string) bool {
	if !strings.Contains(s, "..") && strings.IndexByte(s, '%') < 0 && isASCII(s) {
		return false
	}
	if rawTraversal.MatchString(s) {
		return true
	}
	d := urlDecode(foldWidth(s))
	d = strings.ReplaceAll(d, `\\`, "/")
	d = strings.ReplaceAll(d, `\`, "/")
	return traversalSeg.MatchString(d)
}

// pathPrep prepares text for the path pattern tables: decoded, fullwidth
// folded, backslashes as slashes, "//" and "/./" as "/", lower-case,
// NTFS "::$data" stream suffixes removed.
// (Home-directory forms need no rewriting: the tables match the part below
// the home directory.)
func pathPrep(s string) string {
	s = urlDecode(foldWidth(s))
	if strings.IndexByte(s, '\\') >= 0 {
		s = strings.ReplaceAll(s, `\\`, "/")
		s = strings.ReplaceAll(s, `\`, "/")
	}
	if strings.Contains(s, "//") || strings.Contains(s, "/./") {
		s = squeezeSlashes(s)
	}
	s = lower(s)
	if strings.Contains(s, "::$data") { // NTFS: file::$DATA is the file's content
		s = strings.ReplaceAll(s, "::$data", "")
	}
	return s
}

// squeezeSlashes turns "//" (but not "://") and "/./" into "/", as the
// file system reads them: "~/.ssh//id_rsa" and "/etc/./shadow" name
// ~/.ssh/id_rsa and /etc/shadow (so do JSON's "\/" escapes, "//" once the
// backslash is a slash).
func squeezeSlashes(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '/' && len(b) > 0 && b[len(b)-1] == '/' && !(len(b) > 1 && b[len(b)-2] == ':') {
			continue
		}
		if c == '.' && len(b) > 0 && b[len(b)-1] == '/' && i+1 < len(s) && s[i+1] == '/' {
			i++ // "/./": drop "./"
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lower is strings.ToLower without allocating for lower-case ASCII input,
// and with one allocation for other ASCII input; ASCII is scanned and
// lower-cased 8 bytes at a time (strings.ToLower scans it again and
// appends byte by byte).
func lower(s string) string {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load8(s, i)
		if x&highBits != 0 {
			return strings.ToLower(s)
		}
		if upperBytes(x) != 0 {
			return lowerFrom(s, i)
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			return lowerFrom(s, i)
		}
	}
	return s
}

// lowerFrom is lower for s whose bytes before i are lower-case ASCII.
func lowerFrom(s string, i int) string {
	b := make([]byte, len(s))
	copy(b, s[:i])
	for ; i+8 <= len(s); i += 8 {
		x := load8(s, i)
		if x&highBits != 0 {
			return strings.ToLower(s)
		}
		x |= upperBytes(x) >> 2 // 0x80 → 0x20: set the lower-case bit
		b[i], b[i+1], b[i+2], b[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(&b[0], len(b))
}

// Byte-parallel tests on 8 bytes in a uint64 (SWAR).
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// load8 is s[i:i+8] as a little-endian uint64 (one 8-byte load).
func load8(s string, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// upperBytes sets 0x80 in each byte of x that is 'A'..'Z' (x: ASCII bytes).
func upperBytes(x uint64) uint64 {
	return (x + lowBits*(0x80-'A')) &^ (x + lowBits*(0x80-'Z'-1)) & highBits
}

// eqBytes sets 0x80 in each byte of x equal to c, and possibly in a byte
// right after one that is (the borrow); never misses one.
func eqBytes(x uint64, c byte) uint64 {
	y := x ^ lowBits*uint64(c)
	return (y - lowBits) &^ y & highBits
}

// b is the boundary before a path component: start, separator, quote, space, '=' or ':'.
const b = `(?:^|[/"'\s=:~])`

// e is the boundary after a file name.
const e = `(?:$|[/"'\s,;})\]])`

var sensitiveSet = newPatSet("", []string{
	`\.ssh/(?:id_(?:rsa|dsa|ecdsa|ed25519|xmss)(?:_sk)?|identity)(?:$|["'\s,;})\]])`,
	`\.ssh/(?:id_[a-z0-9_]+|[^/"'\s]*_key)(?:$|["'\s,;})\]])`,
	`/etc/ssh/ssh_host_[a-z0-9_]*key` + e,
	`\.aws/(?:credentials|config|sso/cache)`,
	`\.azure/(?:accesstokens\.json|msal_token_cache|azureprofile\.json)`,
	`\.config/gcloud/(?:credentials\.db|access_tokens\.db|application_default_credentials\.json|legacy_credentials)`,
	`application_default_credentials\.json`,
	`\.kube/config` + e, `kubeconfig` + e,
	`/var/run/secrets/kubernetes\.io`, `/run/secrets/`,
	`\.docker/config\.json`,
	b + `\.git-credentials` + e, b + `\.netrc` + e, b + `_netrc` + e,
	b + `\.npmrc` + e, b + `\.pypirc` + e, b + `\.pgpass` + e, b + `\.my\.cnf` + e,
	b + `\.env(?:\.[a-z0-9_-]+)?` + e, b + `\.envrc` + e,
	`/etc/(?:shadow|gshadow|master\.passwd|sudoers)` + e, `/etc/security/opasswd`,
	`/proc/(?:self|thread-self|\d+)/(?:task/\d+/)?(?:environ|mem|maps)`,
	`\.gnupg/`, `\.password-store/`,
	`library/keychains/`, `\.keychain(?:-db)?` + e, `login\.keychain`,
	`(?:google/chrome|chromium|bravesoftware/brave-browser|microsoft/edge|opera software|vivaldi)/.*(?:login data|cookies|web data|local state)`,
	`\.mozilla/firefox/.*(?:logins\.json|key[34]\.db|cookies\.sqlite)`, `firefox/profiles/.*(?:logins\.json|key[34]\.db|cookies\.sqlite)`,
	`\.terraform\.d/credentials`, `terraform\.tfstate` + e, b + `\.vault-token` + e,
	`\.config/gh/hosts\.yml`, `\.config/hub` + e, `\.cargo/credentials`, `\.gem/credentials`,
	`\.m2/settings(?:-security)?\.xml`, `\.gradle/gradle\.properties`, `\.nuget/nuget\.config`,
	`\.config/op/`, `\.1password/`, `\.bitcoin/wallet`, `wallet\.dat` + e, `\.ethereum/keystore`, `\.electrum/wallets`,
	`windows/system32/config/(?:sam|system|security)` + e, `appdata/(?:roaming|local)/microsoft/(?:credentials|protect|vault)`,
	b + `\.(?:bash|zsh|python|psql|mysql)_history` + e,
	`private[_-]?key`, `[a-z0-9_-]*(?:private|priv|secret)[a-z0-9_-]*\.(?:pem|key)` + e, `\.(?:p12|pfx|jks|keystore)` + e,
	`\.config/rclone/rclone\.conf`, `\.s3cfg` + e, `\.boto` + e, `\.databrickscfg` + e, `\.snowsql/config`,
	`\.claude/\.credentials\.json`, `\.codex/auth\.json`, `\.config/github-copilot/(?:hosts|apps)\.json`,
})

// IsSensitivePath reports whether s (a path, or a text/JSON holding paths)
// names credentials or secrets: SSH private keys, cloud CLI credentials,
// kube config, .env files, /etc/shadow, git/npm/pypi credentials, browser
// profiles, keychains, wallets, Windows SAM/credential stores and so on.
func IsSensitivePath(s string) bool { return SensitivePrepared(PathPrep(s)) }

// PathPrep is the preparation IsSensitivePath and IsPersistencePath apply
// to their input (decoded, fullwidth folded, backslashes as slashes,
// lower-case); callers checking one text both ways prepare it once.
func PathPrep(s string) string { return pathPrep(s) }

// SensitivePrepared is IsSensitivePath on PathPrep's output.
func SensitivePrepared(p string) bool { return sensitiveSet.match(p, p) }

// PersistencePrepared is IsPersistencePath on PathPrep's output.
func PersistencePrepared(p string) bool { return persistenceSet.match(p, p) }

var persistenceSet = newPatSet("", []string{
	b + `\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zshenv|zprofile|zlogin|zlogout|cshrc|tcshrc|kshrc|mkshrc|inputrc|xprofile|xinitrc|xsession)` + e,
	`/etc/(?:profile|bashrc|bash\.bashrc|zshrc|zsh/zshrc|zprofile|environment|rc\.local|ld\.so\.preload)` + e,
	`/etc/profile\.d/`, `/etc/init\.d/`, `/etc/rc\d?\.d/`, `/etc/update-motd\.d/`,
	`\.config/fish/(?:config\.fish|conf\.d/)`,
	`crontab`, `/etc/cron(?:\.d|\.daily|\.hourly|\.weekly|\.monthly|tab)?` + e, `/var/spool/cron`, `/etc/anacrontab`,
	`\.ssh/(?:authorized_keys2?|rc|environment)` + e, `/etc/ssh/sshd_config`,
	`library/launch(?:agents|daemons)/`, `/library/startupitems/`, `library/application support/com\.apple\.backgroundtaskmanagementagent`,
	`/(?:etc|lib|usr/lib|run)/systemd/(?:system|user)/`, `\.config/systemd/user/`, `\.local/share/systemd/user/`,
	`\.git/hooks/`, `\.git/config` + e, `\.husky/`,
	`\.config/autostart/`, `/etc/xdg/autostart/`,
	`start menu/programs/startup`, `microsoft/windows/start menu/programs/startup`,
	`currentversion/(?:run|runonce|runservices|policies/explorer/run)` + e, `winlogon/(?:userinit|shell)`,
	`(?:windows)?powershell/(?:microsoft\.powershell_)?profile\.ps1`,
	`\.vscode/tasks\.json`, `\.vimrc` + e, `\.config/nvim/init\.(?:vim|lua)`,
	`/etc/sudoers(?:\.d/)?`, `/etc/pam\.d/`, `/etc/ld\.so\.conf`,
})

// IsPersistencePath reports whether s names a file or directory whose change
// runs code later: shell rc and profile files, crontabs and cron dirs,
// authorized_keys, LaunchAgents/LaunchDaemons, systemd units, git hooks, XDG
// autostart, Windows Run keys and the Startup folder, editor auto-run files.
func IsPersistencePath(s string) bool { return PersistencePrepared(PathPrep(s)) }
