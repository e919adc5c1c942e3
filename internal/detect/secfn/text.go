package secfn

import (
	"encoding/base64"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// HasShellMeta reports whether s contains shell metacharacters that chain,
// substitute or redirect commands: ; | & ` $( ${ > < and newlines.
func HasShellMeta(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';', '|', '&', '`', '>', '<', '\n', '\r':
			return true
		case '$':
			if i+1 < len(s) && (s[i+1] == '(' || s[i+1] == '{') {
				return true
			}
		}
	}
	return false
}

// ShannonEntropy returns the Shannon entropy of s in bits per byte (0–8).
func ShannonEntropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// maxB64Tokens bounds the work per call.
const maxB64Tokens = 32

// b64Decode decodes one token with whichever alphabet/padding fits.
func b64Decode(t string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(t); err == nil {
			return d, true
		}
	}
	return nil, false
}

// printableRatio is the share of printable text (ASCII printable, whitespace, valid multibyte UTF-8).
func printableRatio(d []byte) float64 {
	if len(d) == 0 {
		return 0
	}
	if !utf8.Valid(d) {
		return 0
	}
	good := 0
	for _, r := range string(d) {
		if r == '\n' || r == '\r' || r == '\t' || (r >= 0x20 && r != 0x7f) {
			good++
		}
	}
	return float64(good) / float64(utf8.RuneCount(d))
}

// decodedTokens returns the text decoded from base64 tokens in s that decode
// to mostly printable UTF-8 (so hex digests and random ids do not count).
func decodedTokens(s string) []string {
	var out []string
	n := 0
	for i := 0; i < len(s) && n < maxB64Tokens; {
		if !isB64(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isB64(s[j]) {
			j++
		}
		for k := 0; k < 2 && j < len(s) && s[j] == '='; k++ {
			j++
		}
		t := s[i:j]
		i = j
		if len(t) < 24 {
			continue
		}
		n++
		// Require mixed character classes: real base64 payloads have them,
		// identifiers and hex digests mostly do not.
		var up, low, dig bool
		for k := 0; k < len(t); k++ {
			c := t[k]
			up = up || (c >= 'A' && c <= 'Z')
			low = low || (c >= 'a' && c <= 'z')
			dig = dig || (c >= '0' && c <= '9')
		}
		if !(up && low) || !(dig || strings.ContainsAny(t, "+/=")) && len(t) < 40 {
			continue
		}
		d, ok := b64Decode(t)
		if !ok || len(d) < 12 || printableRatio(d) < 0.9 {
			continue
		}
		out = append(out, string(d))
	}
	return out
}

func isB64(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '_' || c == '-'
}

// LooksBase64 reports whether s contains a base64 (standard or URL-safe)
// token of at least 24 characters that decodes to printable text.
func LooksBase64(s string) bool { return len(decodedTokens(s)) > 0 }

// DecodeBase64 returns the decoded text of every base64 token in s that
// decodes to printable text, joined by newlines ("" if none), so rules can
// run other functions over hidden payloads.
func DecodeBase64(s string) string { return strings.Join(decodedTokens(s), "\n") }

// isInvisible reports zero-width, bidi-control, tag and variation-selector runes.
func isInvisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2064,
		r >= 0x2066 && r <= 0x2069, r == 0xFEFF, r == 0x180E, r == 0x061C, r == 0x00AD, r == 0x034F,
		r >= 0xE0000 && r <= 0xE007F, r >= 0xE0100 && r <= 0xE01EF, r >= 0xFE00 && r <= 0xFE0F,
		r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0:
		return true
	}
	return false
}

var escapedHidden = regexp.MustCompile(`(?i)\\u(?:200[b-f]|202[a-e]|206[0-9a-f]|feff|180e|2061|2062|2063|2064|\{?e00[0-7][0-9a-f]\}?)|\\udb40\\ud[c-f][0-9a-f]{2}`)

// HasHiddenUnicode reports invisible or deceptive characters: zero-width
// (U+200B–U+200D, U+2060, U+FEFF), bidi overrides and isolates
// (U+202A–U+202E, U+2066–U+2069), Unicode tag characters (U+E0000–U+E007F),
// supplementary variation selectors, variation selectors not following an
// emoji-capable character, Hangul fillers, soft hyphen — raw or as JSON
// \uXXXX escapes.
func HasHiddenUnicode(s string) bool {
	// The ASCII prefix only matters as "prev < 0x80": skip it 8 bytes at a time.
	k := asciiPrefix(s)
	var prev rune
	for i, r := range s[k:] {
		i += k
		if r < 0x80 {
			prev = r
			continue
		}
		switch {
		case r == 0xFE0E || r == 0xFE0F:
			// Emoji presentation selectors are legitimate after a symbol;
			// suspicious after ASCII or another selector.
			if prev < 0x80 || prev == 0xFE0F || prev == 0xFE0E || i == 0 {
				return true
			}
		case r == 0x200D:
			// ZWJ joins emoji sequences; suspicious between non-symbols.
			if prev < 0x2000 {
				return true
			}
		case r == 0xFEFF && i == 0:
			// a leading BOM is harmless
		case isInvisible(r):
			return true
		}
		prev = r
	}
	if strings.IndexByte(s, '\\') < 0 {
		return false // neither escape below (one scan instead of two)
	}
	return strings.Contains(s, `\u`) && escapedHidden.MatchString(s) || strings.Contains(s, `\U000E00`)
}

var ansiRe = regexp.MustCompile(`(?i)\\u001b|\\x1b|\\033|\\e\[`)

// HasANSIEscape reports ANSI/VT escape sequences (ESC or C1 CSI), raw or as
// \u001b, \x1b, \033 or \e[ escapes.
// asciiPrefix returns the length of s's leading run of ASCII bytes.
func asciiPrefix(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if load8(s, i)&highBits != 0 {
			break
		}
	}
	for ; i < len(s) && s[i] < 0x80; i++ {
	}
	return i
}

func HasANSIEscape(s string) bool {
	if strings.IndexByte(s, 0x1b) >= 0 || strings.ContainsRune(s, 0x9b) {
		return true
	}
	return strings.IndexByte(s, '\\') >= 0 && ansiRe.MatchString(s)
}

// foldText prepares foldMarkers' output for phrase matching: whitespace
// runs and JSON "\n" escapes collapsed to one space.
func foldText(s string) string {
	if strings.IndexByte(s, '\\') >= 0 {
		s = replaceJSONWS(s)
	}
	return strings.Join(strings.Fields(s), " ")
}

// replaceJSONWS replaces every JSON escape \n, \r or \t by one space; an
// escaped backslash stays (so "\\rm" is a backslash and "rm", as in
// bash's alias bypass, not a backslash, a space and "m"). A byte loop,
// ~20× faster than a regexp.
func replaceJSONWS(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b []byte
	for ; i+1 < len(s); i++ {
		if s[i] != '\\' {
			if b != nil {
				b = append(b, s[i])
			}
			continue
		}
		if c := s[i+1]; c == 'n' || c == 'r' || c == 't' {
			if b == nil {
				b = make([]byte, 0, len(s))
				b = append(b, s[:i]...)
			}
			b = append(b, ' ')
			i++
			continue
		}
		if b != nil {
			b = append(b, s[i])
		}
		if s[i+1] == '\\' { // an escaped backslash: keep both
			i++
			if b != nil {
				b = append(b, '\\')
			}
		}
	}
	if b == nil {
		return s
	}
	if i < len(s) {
		b = append(b, s[i:]...)
	}
	return string(b)
}

type marker struct {
	id      string
	needles []string // at least one must occur in the lower-cased text
	re      *regexp.Regexp
	// also are further literal sets, one of each must occur too: every
	// alternative of re contains one of each set's words (words without
	// whitespace or backslash, so a word in the folded text is in the
	// lower-cased one). Checked before the regexp runs.
	also [][]string
}

// markerAlts[i] are markers[i].re's top-level alternatives when each
// starts with a literal (then each skips to its literal with a string
// search, where the whole regexp steps through every byte); nil = use re.
var markerAlts = func() [][]*regexp.Regexp {
	out := make([][]*regexp.Regexp, len(markers))
	for i := range markers {
		out[i] = literalAlternatives(markers[i].re)
	}
	return out
}()

// matchMarker reports whether marker i's regexp matches the folded text f.
func matchMarker(i int, f string) bool {
	alts := markerAlts[i]
	if alts == nil {
		return markers[i].re.MatchString(f)
	}
	for _, a := range alts {
		if a.MatchString(f) {
			return true
		}
	}
	return false
}

// literalAlternatives returns re's top-level alternatives compiled on their
// own, or nil unless there are several and each has a literal prefix.
func literalAlternatives(re *regexp.Regexp) []*regexp.Regexp {
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil || t.Op != syntax.OpAlternate {
		return nil
	}
	var out []*regexp.Regexp
	for _, sub := range t.Sub {
		a, err := regexp.Compile(sub.String())
		if err != nil {
			return nil
		}
		if lit, _ := a.LiteralPrefix(); lit == "" {
			return nil
		}
		out = append(out, a)
	}
	return out
}

// markerAlso are the markers' further required words (by id); see marker.also.
var markerAlso = map[string][][]string{
	"important-tag":       {{"<"}, {">"}},
	"system-tag":          {{"<", "[", "##"}, {">", "]", "##"}},
	"ignore-instructions": {{"instructions", "prompt", "rules", "guidelines", "directives", "context"}},
	"conceal-from-user": {
		{"not", "don't", "dont", "never", "without", "hide"},
		{"tell", "inform", "mention", "notif", "alert", "show", "reveal", "let", "from", "must", "should"},
	},
	"system-prompt":     {{"prompt", "instructions:", "now", "developer"}},
	"tool-override":     {{"before", "instead", "when"}},
	"exfil-instruction": {{"read", "send", "include", "pass", "upload", "forward", "append"}},
}

var markers = []marker{
	{"important-tag", []string{"important"}, regexp.MustCompile(`< ?/? ?important ?>`), markerAlso["important-tag"]},
	{"system-tag", []string{"sys", "instruction", "admin", "developer", "inst]", "<|", "##"}, regexp.MustCompile(`< ?/? ?(?:system|sys|system_prompt|instructions?|admin|developer) ?>|\[/?(?:system|inst)\]|<\|(?:im_start|im_end|system|endoftext)\|>|#{2,} ?(?:system|instructions?)\b`), markerAlso["system-tag"]},
	{"ignore-instructions", []string{"ignore", "disregard", "forget", "override", "bypass"}, regexp.MustCompile(`\b(?:ignore|disregard|forget|override|bypass)\b (?:all |any |the |your )?(?:of )?(?:the |your |my )?(?:previous|prior|above|earlier|preceding|system|original|existing)? ?(?:instructions|prompts?|rules|guidelines|directives|context)\b`), markerAlso["ignore-instructions"]},
	{"conceal-from-user", []string{"user"}, regexp.MustCompile(`\b(?:do not|don't|dont|never|without) (?:tell|telling|inform|informing|mention|mentioning|notify|notifying|alert|alerting|show|showing|reveal|revealing|let) (?:this to |it to |anything to )?(?:the |your )?user\b|\bhide (?:this|it) from (?:the )?user\b|\bthe user (?:must|should) not (?:know|see|be told)\b`), markerAlso["conceal-from-user"]},
	{"system-prompt", []string{"system", "instructions", "mode"}, regexp.MustCompile(`\b(?:(?:new|updated|real|true|hidden|secret|original) system prompt|system prompt ?:|new instructions:|updated instructions:|you are now (?:in )?(?:developer|dan|admin|god) mode|developer mode (?:enabled|on))`), markerAlso["system-prompt"]},
	{"tool-override", []string{"tool"}, regexp.MustCompile(`\b(?:before (?:using|calling) (?:this|any other) tool,? (?:you must|always|first)|instead of (?:calling|using) the .{0,40}tool,? (?:call|use)|when (?:this|the) tool is (?:available|present),? .{0,60}(?:must|should) )`), markerAlso["tool-override"]},
	{"exfil-instruction", []string{"ssh", "id_rsa", ".aws", ".env", "mcp.json", "/etc/passwd", "private"}, regexp.MustCompile(`\b(?:read|send|include|pass|upload|forward|append) (?:the )?(?:contents? of |content of )?(?:~/\.ssh|\.ssh/id_|id_rsa|~/\.aws|\.env\b|mcp\.json|/etc/passwd|private key)`), markerAlso["exfil-instruction"]},
}

// markerNeedles finds the markers' needles in one pass, and whether a split
// keyword occurs (group splitGroup).
var markerNeedles = func() *needleIndex {
	ni := &needleIndex{by: make([][]needleRef, 1)}
	for i, m := range markers {
		for _, n := range m.needles {
			if len(n) < 2 || !ni.add(n, i) {
				panic("secfn: marker needle without a bigram slot: " + n)
			}
		}
	}
	for i, kw := range splitKeywords {
		if !ni.addSplit(kw, splitGroup, i < midSplit) {
			panic("secfn: split keyword without a bigram slot: " + kw)
		}
	}
	return ni
}()

// Split words. An attacker spaces out the letters of a phrase ("i g n o r e
// a l l  p r e v i o u s"), splits its words with punctuation ("ign-ore",
// "i.g.n.o.r.e") or joins its words with it ("ignore_all_previous-
// instructions"); models read all of these. The one needle pass also looks
// for the keywords below written so (splitAt); only then are the regions
// around them glued (separators removed) and matched against the glued
// forms of the markers (gluedMarkers). Ordinary text has no split keyword,
// so this costs it nothing beyond the needle pass.

// splitGroup is the needle group that reports a split keyword.
var splitGroup = len(markers)

// splitKeywords are the words looked for split; joinKeywords (a prefix of
// them) are also looked for whole but followed by punctuation and a
// letter. Only the words up to midSplit (a prefix) are looked for split
// after their second letter ("ign-ore"); the others, whose first two
// letters are frequent ("in", "sy", "pr", "de", "us"), only letter-spaced
// or split after the first ("s-ystem").
var (
	splitKeywords = []string{"ignore", "disregard", "forget", "override", "bypass", "important", "instructions", "system", "prompt", "developer", "user"}
	joinKeywords  = splitKeywords[:5]
	midSplit      = 6
)

// splitSeps are the separators splitAt skips between letters ("\t" and
// " " included; folded Unicode dashes and dots arrive as - and .).
const splitSeps = " \t-._*~`+|/,"

func isSplitSep(c byte) bool { return splitSep[c] }

var splitSep = func() (t [256]bool) {
	for i := 0; i < len(splitSeps); i++ {
		t[splitSeps[i]] = true
	}
	return t
}()

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' }

// splitAt reports whether s starts with keyword kw written split: its
// letters with up to 3 separators between two of them, either between
// every two (letter-spacing: "i g n o r e", "i.g.n.o.r.e") or only
// punctuation ("ign-ore", "ig.no.re"), with one after the first letter
// unless mid; or, for joinKeywords, kw itself followed by punctuation and
// a letter ("ignore_all").
func splitAt(s, kw string, mid bool) bool {
	if len(s) < 2 || s[0] != kw[0] || !mid && !splitSep[s[1]] {
		return false
	}
	j, gaps, spaces := 1, 0, false
	for k := 1; k < len(kw); k++ {
		n := 0
		for j < len(s) && isSplitSep(s[j]) {
			if n == 3 {
				return false
			}
			spaces = spaces || s[j] == ' ' || s[j] == '\t'
			j++
			n++
		}
		if j >= len(s) || s[j] != kw[k] {
			return false
		}
		if n > 0 {
			gaps++
		}
		j++
	}
	if gaps == 0 {
		return j+1 < len(s) && s[j] != ' ' && s[j] != '\t' && isSplitSep(s[j]) && isLetter(s[j+1]) && slices.Contains(joinKeywords, kw)
	}
	return !spaces || gaps == len(kw)-1
}

// gluedMarkers are markers' expressions for glued text (separators removed,
// so no word boundaries): the markers made of words and tags. The glued
// ignore-instructions needs a word between the verb and the object
// ("ignore_rules" is an ordinary option name); gluedJoined, for a keyword
// joined to the next word ("ignore_all_..."), a determiner right after the
// verb ("forget_previous_context" is an option name too).
var (
	gluedMarkers = newGlued(map[string][]string{
		"important-tag": {"<important>"},
		"system-tag": append(each("system|sys|systemprompt|instructions|instruction|admin|developer", "<", ">"),
			`\[system\]`, `\[inst\]`, "##system", "##instruction"),
		"ignore-instructions": each(ignoreVerbs, "", `(?:all|any|the|your|of|my|previous|prior|above|earlier|preceding|system|original|existing){1,4}`+ignoreObjects),
		"conceal-from-user": append(each("donot|dont|never|without", "", `(?:tell|telling|inform|informing|mention|mentioning|notify|notifying|alert|alerting|show|showing|reveal|revealing|let)(?:thisto|itto|anythingto)?(?:the|your)?user`),
			`hide(?:this|it)from(?:the)?user`, `theuser(?:must|should)not(?:know|see|betold)`),
		"system-prompt": append(each("new|updated|real|true|hidden|secret|original", "", "systemprompt"),
			"systemprompt:", "newinstructions:", "updatedinstructions:", `youarenow(?:in)?(?:developer|dan|admin|god)mode`, `developermode(?:enabled|on)`),
	})
	gluedJoined = newGlued(map[string][]string{
		"ignore-instructions": each(ignoreVerbs, "", `(?:all|any|the|your)(?:of)?(?:the|your|my)?(?:previous|prior|above|earlier|preceding|system|original|existing)?`+ignoreObjects),
	})
)

const (
	ignoreVerbs   = "ignore|disregard|forget|override|bypass"
	ignoreObjects = `(?:instructions|prompts?|rules|guidelines|directives|context)`
)

// each returns pre+w+post for every w of the |-separated words.
func each(words, pre, post string) []string {
	var out []string
	for _, w := range strings.Split(words, "|") {
		out = append(out, pre+w+post)
	}
	return out
}

// gluedPat is one expression of a glued marker; each starts with a literal
// (so the regexp skips to it with a string search), many are one.
type gluedPat struct {
	marker int
	lit    string         // the whole expression, when it is a literal
	re     *regexp.Regexp // else
}

func newGlued(exprs map[string][]string) []gluedPat {
	var ps []gluedPat
	for id, es := range exprs {
		for _, e := range es {
			re := regexp.MustCompile(e)
			lit, complete := re.LiteralPrefix()
			if lit == "" {
				panic("secfn: glued marker expression without a literal prefix: " + e)
			}
			p := gluedPat{marker: markerIndex[id], re: re}
			if complete {
				p.lit, p.re = lit, nil
			}
			ps = append(ps, p)
		}
	}
	return ps
}

// overlaps reports whether p matches g somewhere in [from, to).
func (p *gluedPat) overlaps(g string, from, to int) bool {
	if p.re == nil {
		for k := 0; ; {
			j := strings.Index(g[k:], p.lit)
			if j < 0 || k+j >= to {
				return false
			}
			if k+j+len(p.lit) > from {
				return true
			}
			k += j + 1
		}
	}
	for _, loc := range p.re.FindAllStringIndex(g, 8) {
		if loc[0] < to && loc[1] > from {
			return true
		}
	}
	return false
}

// glue removes whitespace, splitSeps and apostrophes from s.
func glue(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isSplitSep(c) && c != '\'' && c != '\n' && c != '\r' {
			b = append(b, c)
		}
	}
	return string(b)
}

// splitMarkers returns, per marker, whether its glued form matches the
// glued text around a split keyword in l (folded text: 160 bytes before
// the keyword to 240 after) in a match that takes in the keyword, for at
// most 16 keywords. ("override_defaults(system_prompt=...)" is not a
// system-prompt marker: the match does not take in "override".)
func splitMarkers(l string) (hit [maxPats]bool) {
	n := 0
	ni := markerNeedles
	for i := 0; i+1 < len(l) && n < 16; i++ {
		slot := ni.table[uint16(l[i])<<8|uint16(l[i+1])]
		if slot == 0 {
			continue
		}
		for _, nr := range ni.by[slot] {
			if nr.split && splitAt(l[i:], nr.needle, nr.mid) {
				n++
				gluedAround(l, i, nr.needle, &hit)
				break
			}
		}
	}
	return hit
}

// gluedAround matches gluedMarkers around the split keyword kw at l[i:].
func gluedAround(l string, i int, kw string, hit *[maxPats]bool) {
	pre := glue(l[max(0, i-160):i])
	g := pre + glue(l[i:min(len(l), i+240)])
	from, to := len(pre), len(pre)+len(kw) // glue(l[i:]) starts with kw
	ps := gluedMarkers
	if strings.HasPrefix(l[i:], kw) { // joined, not split
		ps = gluedJoined
	}
	for k := range ps {
		if p := &ps[k]; !hit[p.marker] && p.overlaps(g, from, to) {
			hit[p.marker] = true
		}
	}
}

// ignoreMarker is the index of ignore-instructions in markers.
var ignoreMarker = markerIndex["ignore-instructions"]

// depunctIgnore reports whether ignore-instructions matches l with the
// punctuation inside words removed ("ignore all prev.ious instruc-tions"):
// spaces stay, so "don't forget, the rules" is still no marker. Run when
// l has the verb (its regexp did not match) or a split keyword.
func depunctIgnore(l string) bool {
	v := depunct(l)
	if len(v) == len(l) {
		return false // nothing removed: the regexp already ran on l
	}
	m := &markers[ignoreMarker]
	return containsOneOfEach(v, m.also) && matchMarker(ignoreMarker, foldText(v))
}

// depunct removes each punctuation byte of splitSeps that stands between
// two letters.
func depunct(l string) string {
	var b []byte
	for i := 1; i+1 < len(l); i++ {
		if c := l[i]; c != ' ' && c != '\t' && splitSep[c] && isLetter(l[i-1]) && isLetter(l[i+1]) {
			if b == nil {
				b = append(make([]byte, 0, len(l)), l[:i]...)
			}
			continue
		}
		if b != nil {
			b = append(b, l[i])
		}
	}
	if b == nil {
		return l
	}
	return string(append(b, l[len(l)-1]))
}

// markerIndex is the index of each marker id in markers.
var markerIndex = func() map[string]int {
	idx := map[string]int{}
	for i, m := range markers {
		idx[m.id] = i
	}
	return idx
}()

var htmlComment = regexp.MustCompile(`<!--([\s\S]{0,1000}?)-->`)
var commentInstr = regexp.MustCompile(`\b(?:ignore|instruction|assistant|ai|model|llm|you must|do not|don't|tool|system|prompt)\b`)

// InjectionMarkers returns the ids of prompt-injection markers found in s
// (case-, whitespace-, fullwidth- and look-alike-insensitive, invisible
// characters and combining marks ignored, \uXXXX escapes decoded: see
// foldMarkers): important-tag, system-tag, ignore-instructions,
// conceal-from-user, system-prompt, tool-override, exfil-instruction,
// html-comment (a hidden HTML comment addressing the model).
func InjectionMarkers(s string) []string {
	if s == "" {
		return nil
	}
	l := foldMarkers(s)
	f := ""
	var out []string
	found := markerNeedles.find(l)
	var glued [maxPats]bool
	if found[splitGroup] {
		glued = splitMarkers(l)
	}
	for i, m := range markers {
		if glued[i] {
			out = append(out, m.id)
			continue
		}
		if !found[i] {
			if i == ignoreMarker && found[splitGroup] && depunctIgnore(l) {
				out = append(out, m.id) // the verb itself split ("ig-nore")
			}
			continue
		}
		if containsOneOfEach(l, m.also) {
			if f == "" {
				f = foldText(l)
			}
			if matchMarker(i, f) {
				out = append(out, m.id)
				continue
			}
		}
		if i == ignoreMarker && depunctIgnore(l) {
			out = append(out, m.id)
		}
	}
	if strings.Contains(l, "<!--") {
		if f == "" {
			f = foldText(l)
		}
		for _, c := range htmlComment.FindAllStringSubmatch(f, 8) {
			if commentInstr.MatchString(c[1]) {
				out = append(out, "html-comment")
				break
			}
		}
	}
	return out
}

// HasInjectionMarkers reports whether InjectionMarkers finds anything.
func HasInjectionMarkers(s string) bool { return len(InjectionMarkers(s)) > 0 }

var egressWords = map[string]bool{
	"fetch": true, "http": true, "https": true, "request": true, "curl": true, "wget": true,
	"webhook": true, "upload": true, "send": true, "email": true, "mail": true, "smtp": true,
	"slack": true, "discord": true, "telegram": true, "teams": true, "post": true, "publish": true,
	"sms": true, "tweet": true, "gist": true, "paste": true, "pastebin": true, "navigate": true,
	"browse": true, "browser": true, "url": true, "web": true, "download": true, "ftp": true,
	"sftp": true, "scp": true, "notify": true, "message": true, "share": true, "s3": true,
	"put": false, "ngrok": true, "sendgrid": true, "twilio": true, "mailgun": true,
}

// IsEgressTool reports whether a tool name suggests sending data out
// (fetch, http_request, send_email, slack_post_message, upload_file, ...).
// The name is split on _ - . / space and camelCase boundaries.
func IsEgressTool(name string) bool {
	// The words of splitIdent, lower-cased in a stack buffer (ASCII) so
	// that the map lookups do not allocate; it runs on every tool call.
	var buf [64]byte
	found := false
	eachIdentWord(name, func(w string) bool {
		if len(w) <= len(buf) && isASCII(w) {
			b := buf[:len(w)]
			for i := 0; i < len(w); i++ {
				c := w[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i] = c
			}
			found = egressWords[string(b)]
		} else {
			found = egressWords[strings.ToLower(w)]
		}
		return !found
	})
	return found
}

// eachIdentWord calls f with the words of splitIdent (not lower-cased),
// in order, while f returns true.
func eachIdentWord(s string, f func(string) bool) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == '/' || c == ' ' || c == ':':
			if i > start && !f(s[start:i]) {
				return
			}
			start = i + 1
		case c >= 'A' && c <= 'Z' && i > start && s[i-1] >= 'a' && s[i-1] <= 'z':
			if !f(s[start:i]) {
				return
			}
			start = i
		}
	}
	if len(s) > start {
		f(s[start:])
	}
}

func splitIdent(s string) []string {
	var out []string
	start := 0
	flush := func(i int) {
		if i > start {
			out = append(out, strings.ToLower(s[start:i]))
		}
		start = i
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == '/' || c == ' ' || c == ':':
			flush(i)
			start = i + 1
		case c >= 'A' && c <= 'Z' && i > start && s[i-1] >= 'a' && s[i-1] <= 'z':
			flush(i)
		}
	}
	flush(len(s))
	return out
}

var destructiveSet = newPatSet("(?i)", []string{
	`\brm\s+(?:-[a-z]*(?:r[a-z]*f|f[a-z]*r)[a-z]*|(?:-[a-z]*[rf][a-z]*\s+)+-[a-z]*[rf][a-z]*|--recursive\s+--force|--force\s+--recursive|-r\s+--force|-f\s+--recursive)\s+(?:--no-preserve-root\s+)?(?:--\s+)?["']?(?:/|~|\*|\$|\.\.|\./?\*|\./?(?:\s|$|["';&|]))`,
	`--no-preserve-root`,
	`\bmkfs(?:\.\w+)?\b`, `\bdd\b[^|;&\n]*\bof=/dev/`, `>\s*/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|disk\d)`,
	`\bshred\b\s+-`, `\bwipefs\b`, `:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:`,
	`\bdrop\s+(?:table|database|schema|keyspace|collection)\b`, `\btruncate\s+(?:table\s+)?(?:only\s+)?[\w."]+\s*(?:;|$|["',]|\s+(?:cascade|restart))`,
	`\bdelete\s+from\s+[\w."]+\s*(?:;|$|["'])`, `\.drop\(\)|\bdropDatabase\(`, `\bflushall\b|\bflushdb\b`,
	`\bgit\s+push\b[^|;&\n]*(?:\s--force(?:\s|$|["'])|\s-f\b|\s\+[\w/]+)`, `\bgit\s+reset\s+--hard\b`, `\bgit\s+clean\s+-[a-z]*f`,
	`\bgit\s+branch\s+-D\b`, `\bgit\s+filter-branch\b`,
	`\bterraform\s+(?:destroy\b|apply\b[^|;&\n]*-destroy\b)`, `\bpulumi\s+destroy\b`, `\bkubectl\s+delete\b`, `\bhelm\s+(?:uninstall|delete)\b`,
	`\baws\s+s3\s+rb\b`, `\baws\s+s3\s+rm\b[^|;&\n]*--recursive`, `\baws\s+\w+\s+(?:terminate-instances|delete-db-instance|delete-bucket|delete-stack|delete-cluster|delete-table)\b`,
	`\bgcloud\s+[^|;&\n]*\bdelete\b`, `\baz\s+(?:group|vm|storage account|sql db)\s+delete\b`,
	`\bchmod\s+-R\s+0?777\s+/`, `\bchown\s+-R\s+\S+\s+/(?:\s|$)`, `\bformat\s+[a-z]:`, `\bdel\s+/[sfq]\b`, `\brd\s+/s\b`, `\brmdir\s+/s\b`,
	`\bremove-item\b[^|;&\n]*-recurse`, `\bdocker\s+(?:system|volume)\s+prune\b`, `\bdropdb\b`,
	`\bvssadmin\s+delete\s+shadows\b`, `\bcipher\s+/w\b`, `\bdiskpart\b`, `\bsystemctl\s+(?:stop|disable)\s+(?:sshd|firewalld|auditd)`,
	`\bfind\b[^|;&\n]*\s-delete\b`, `\bcrontab\s+-r\b`, `\bhistory\s+-c\b`,
})

// IsDestructiveCommand reports whether s contains a destructive shell, SQL
// or cloud command: rm -rf of /, ~, * or $VARS; mkfs; dd of=/dev/...; DROP
// TABLE/DATABASE; TRUNCATE; DELETE without WHERE; git push --force; git
// reset --hard; terraform destroy; kubectl delete; helm uninstall; aws s3 rb;
// cloud delete commands; Windows format/del /s/rd /s; Remove-Item -Recurse.
//
// Unicode dashes count as "-" (PowerShell takes "–Recurse" for
// "-Recurse"), $IFS / ${IFS} as a space (a shell evasion of the spaces
// between words), and empty quotes are dropped (r”m).
func IsDestructiveCommand(s string) bool {
	if strings.IndexByte(s, '\\') >= 0 {
		s = replaceJSONWS(s)
	}
	if asciiPrefix(s) != len(s) {
		s = foldDashes(s)
	}
	if strings.Contains(s, "IFS") {
		s = ifsRe.ReplaceAllString(s, " ")
	}
	if strings.Contains(s, "''") || strings.Contains(s, `""`) || strings.Contains(s, `\"\"`) {
		s = emptyQuotes.Replace(s) // the shell drops them: r''m is rm
	}
	return destructiveSet.match(s, lower(s))
}

// emptyQuotes removes empty quote pairs, also JSON-escaped ones.
var emptyQuotes = strings.NewReplacer(`\"\"`, "", `""`, "", "''", "")

var ifsRe = regexp.MustCompile(`\$\{IFS\}|\$IFS\b`)

// foldDashes replaces the Unicode hyphens and dashes by "-".
func foldDashes(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63, 0xFF0D:
			return '-'
		}
		return r
	}, s)
}
