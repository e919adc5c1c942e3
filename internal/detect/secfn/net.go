// Package secfn holds the security helper functions that detection rules call
// from CEL (internal/detect registers each one as a CEL overload). They are
// plain Go, allocation-light, never panic and accept any input.
package secfn

import (
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// metadataHosts are cloud instance-metadata host names.
var metadataHosts = map[string]bool{
	"metadata.google.internal":     true,
	"metadata.goog":                true,
	"metadata":                     true,
	"metadata.azure.com":           true,
	"metadata.azure.internal":      true,
	"instance-data":                true,
	"instance-data.ec2.internal":   true,
	"metadata.tencentyun.com":      true,
	"metadata.platformequinix.com": true,
	"localhost":                    true,
	"localhost.localdomain":        true,
	"ip6-localhost":                true,
	"ip6-loopback":                 true,
	"localtest.me":                 true,
	"lvh.me":                       true,
	"kubernetes.default.svc":       true,
	"kubernetes.default":           true,
}

// internalSuffixes are DNS suffixes that never resolve to public addresses.
var internalSuffixes = []string{
	".localhost", ".internal", ".local", ".localdomain", ".home.arpa", ".intranet",
	".lan", ".corp", ".svc.cluster.local", ".cluster.local", ".localtest.me", ".lvh.me",
}

// wildcardDNS are services that resolve <ip>.<service> to <ip>.
var wildcardDNS = []string{".nip.io", ".sslip.io", ".xip.io", ".traefik.me", ".backname.io", ".nip.direct"}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")
var thisNet = netip.MustParsePrefix("0.0.0.0/8")
var nat64 = netip.MustParsePrefix("64:ff9b::/96")
var sixToFour = netip.MustParsePrefix("2002::/16")
var benchmarking = netip.MustParsePrefix("198.18.0.0/15")

// IsInternalAddress reports whether s — a host name, an IP address in any
// notation inet_aton accepts (2130706433, 0x7f000001, 0177.0.0.1, 127.1), an
// IPv6 address (also bracketed, IPv4-mapped, NAT64, 6to4), a host:port or a
// URL — names a loopback, private (RFC 1918, ULA), link-local, unspecified,
// carrier-grade NAT or cloud-metadata destination.
func IsInternalAddress(s string) bool {
	h := foldHost(hostOf(s))
	if h == "" {
		return false
	}
	if a, ok := ParseIP(h); ok {
		return internalIP(a)
	}
	if metadataHosts[h] {
		return true
	}
	for _, suf := range internalSuffixes {
		if strings.HasSuffix(h, suf) {
			return true
		}
	}
	for _, suf := range wildcardDNS {
		if strings.HasSuffix(h, suf) {
			if a, ok := embeddedIPv4(strings.TrimSuffix(h, suf)); ok && internalIP(a) {
				return true
			}
		}
	}
	return false
}

func internalIP(a netip.Addr) bool {
	if a.Is6() {
		if a.Is4In6() {
			return internalIP(a.Unmap())
		}
		if nat64.Contains(a) {
			b := a.As16()
			return internalIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
		if sixToFour.Contains(a) {
			b := a.As16()
			return internalIP(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
		// IPv4-compatible (deprecated) ::a.b.c.d
		b := a.As16()
		zero := true
		for i := 0; i < 12; i++ {
			if b[i] != 0 {
				zero = false
				break
			}
		}
		if zero && (b[12]|b[13]) != 0 {
			return internalIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
	}
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() ||
		(a.Is4() && (cgnat.Contains(a) || thisNet.Contains(a) || benchmarking.Contains(a)))
}

// foldHost maps a host name as URL parsers do before resolving it (IDNA,
// UTS #46: WHATWG URL in browsers and Node's fetch, Python's idna codec):
// fullwidth and other compatibility forms of ASCII letters and digits
// (①②⑦.⓪.⓪.①, １２７.０.０.１, 𝟏𝟐𝟕.𝟎.𝟎.𝟏, ⓛⓞⓒⓐⓛⓗⓞⓢⓣ) to ASCII, the
// ideographic and fullwidth full stops (。．｡) to ".", and invisible
// characters removed. Look-alikes of other scripts stay: lоcalhost with a
// Cyrillic о is another name (xn--lcalhost-...).
func foldHost(h string) string {
	if asciiPrefix(h) == len(h) {
		return h
	}
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			b.WriteRune(unicode.ToLower(r - 0xFEE0))
		case r == 0x3002 || r == 0xFF0E || r == 0xFF61:
			b.WriteByte('.')
		case isInvisible(r):
		default:
			if t, ok := hostFold[r]; ok {
				b.WriteString(t)
			} else {
				b.WriteRune(unicode.ToLower(r))
			}
		}
	}
	return strings.TrimSuffix(b.String(), ".")
}

// hostOf extracts a lower-case host from a URL, host:port, [v6]:port or bare host.
func hostOf(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if strings.IndexByte(s, '\\') >= 0 {
		s = strings.ReplaceAll(s, `\`, "/")
	}
	if strings.Contains(s, "://") || strings.HasPrefix(s, "//") {
		return URLHost(s)
	}
	if strings.ContainsAny(s, "/?#@") {
		if h := URLHost("//" + s); h != "" {
			return h
		}
	}
	s = strings.ToLower(s)
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			s = s[1:i]
		}
	} else if strings.Count(s, ":") == 1 {
		s = s[:strings.IndexByte(s, ':')]
	}
	if i := strings.IndexByte(s, '%'); i > 0 && strings.Contains(s, ":") { // zone
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// ParseIP parses an IP address in standard or legacy (inet_aton) notation:
// 1 to 4 parts, each decimal, 0x-hex or 0-octal.
func ParseIP(s string) (netip.Addr, bool) {
	s = strings.Trim(s, "[]")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone(""), true
	}
	if s == "" || strings.ContainsAny(s, ":") {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
		n |= vals[i] << (24 - 8*uint(i))
	}
	if vals[last] >= 1<<(8*uint(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

var dottedV4 = regexp.MustCompile(`(\d{1,3})[.-](\d{1,3})[.-](\d{1,3})[.-](\d{1,3})$`)
var hexV4 = regexp.MustCompile(`(?:^|[.-])([0-9a-f]{8})$`)

// embeddedIPv4 finds an IPv4 address at the end of a wildcard-DNS label
// ("app.10.0.0.1", "10-0-0-1", "magic-7f000001").
func embeddedIPv4(s string) (netip.Addr, bool) {
	if m := dottedV4.FindStringSubmatch(s); m != nil {
		a, err := netip.ParseAddr(m[1] + "." + m[2] + "." + m[3] + "." + m[4])
		return a, err == nil
	}
	if m := hexV4.FindStringSubmatch(s); m != nil {
		v, err := strconv.ParseUint(m[1], 16, 32)
		if err == nil {
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
		}
	}
	return netip.Addr{}, false
}

// URLHost returns the lower-case host of a URL (without port and brackets),
// tolerating backslashes and missing schemes; "" if there is none.
func URLHost(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, `\`, "/")
	if !strings.Contains(s, "://") && !strings.HasPrefix(s, "//") {
		s = "//" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		// url.Parse rejects some hosts (e.g. bad port); fall back to manual split.
		i := strings.Index(s, "//")
		if i < 0 {
			return ""
		}
		rest := s[i+2:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if j := strings.LastIndexByte(rest, '@'); j >= 0 {
			rest = rest[j+1:]
		}
		if strings.HasPrefix(rest, "[") {
			if j := strings.IndexByte(rest, ']'); j > 0 {
				return strings.ToLower(rest[1:j])
			}
		}
		if j := strings.IndexByte(rest, ':'); j >= 0 {
			rest = rest[:j]
		}
		return strings.TrimSuffix(strings.ToLower(rest), ".")
	}
	h := u.Hostname()
	if dec, err := url.PathUnescape(h); err == nil {
		h = dec
	}
	if i := strings.IndexByte(h, '%'); i > 0 && strings.Contains(h, ":") {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

var urlRe = regexp.MustCompile(`(?i)\b(?:https?|ftp|file|gopher|dict|ldap|wss?|sftp|tftp)://[^\s"'<>` + "`" + `\\{}|^]+`)

// maxURLs bounds URLs' result.
const maxURLs = 64

// URLs extracts every URL in free text or JSON (JSON "\/" escapes are undone).
func URLs(s string) []string {
	if !strings.Contains(s, "://") && !strings.Contains(s, `:\/\/`) {
		return nil
	}
	if strings.Contains(s, `\/`) {
		s = strings.ReplaceAll(s, `\/`, "/")
	}
	out := findURLs(s, maxURLs)
	for i, u := range out {
		out[i] = strings.TrimRight(u, ".,;:)]")
	}
	return out
}

// urlSchemes are urlRe's schemes.
var urlSchemes = []string{"http", "https", "ftp", "file", "gopher", "dict", "ldap", "ws", "wss", "sftp", "tftp"}

// findURLs is urlRe.FindAllString(s, n) without the regexp engine (which
// tries the scheme alternation at every byte of a text of KiBs): every
// match contains "://" right after its scheme, so the matches are found
// from the occurrences of "://". The scheme is the run of ASCII letters
// before it (a match starts at a word boundary, and no boundary is inside
// a run of letters), preceded by the start or a non-word byte, one of
// urlSchemes case-insensitively; the URL runs on to the first byte urlRe
// excludes, at least one byte. Leftmost first, not overlapping, like
// FindAllString (TestFindURLsMatchesRegexp, FuzzFindURLs).
func findURLs(s string, n int) []string {
	if strings.Contains(s, "\u017f") {
		// (?i) folds "ſ" (U+017F) to "s": leave such texts to the regexp.
		return urlRe.FindAllString(s, n)
	}
	var out []string
	next := 0 // matches do not overlap: the next one starts here or later
	for i := 0; len(out) < n; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		c := i + k // the colon
		i = c + 1
		j := c
		for j > next && isASCIILetter(s[j-1]) {
			j--
		}
		if j > 0 && isWordByte(s[j-1]) || !isURLScheme(s[j:c]) {
			continue
		}
		e := c + 3
		for e < len(s) && !urlStop[s[e]] {
			e++
		}
		if e == c+3 {
			continue
		}
		out = append(out, s[j:e])
		next, i = e, e
	}
	return out
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isWordByte(c byte) bool { return isASCIILetter(c) || c >= '0' && c <= '9' || c == '_' }

func isURLScheme(w string) bool {
	for _, sc := range urlSchemes {
		if strings.EqualFold(w, sc) {
			return true
		}
	}
	return false
}

// urlStop are the bytes urlRe's `[^\s"'<>` + "`" + `\\{}|^]` does not match
// (\s is ASCII white space in Go's syntax: \t \n \f \r and space).
var urlStop = func() (t [256]bool) {
	for _, c := range "\t\n\f\r \"'<>`\\{}|^" {
		t[c] = true
	}
	return t
}()
