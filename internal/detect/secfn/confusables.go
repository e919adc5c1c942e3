package secfn

import (
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

//go:generate go run gen_decompositions.go

// confusables maps letters of other scripts that look like Latin letters
// (after Unicode's confusables.txt: Cyrillic, Greek, Armenian, Cherokee,
// Latin small capitals and stroked letters) and look-alike spaces and
// punctuation to lower-case ASCII. Keys are runes as written: an upper-case
// key applies to that case only (Greek Η looks like H, η like n); a
// lower-case key also catches its upper case, which foldMarkers lowers
// before a second lookup. Decomposable forms (accents, math alphabets,
// circled and parenthesised letters, ligatures) come from decompositions,
// composed with this table at init.
var confusables = map[rune]string{
	// Cyrillic (upper case lowers onto these).
	'а': "a", 'в': "b", 'г': "r", 'е': "e", 'к': "k", 'м': "m", 'н': "h", 'о': "o",
	'п': "n", 'р': "p", 'с': "c", 'т': "t", 'у': "y", 'х': "x", 'ь': "b", 'ѕ': "s",
	'і': "i", 'ј': "j", 'һ': "h", 'ӏ': "l", 'ү': "y", 'ԁ': "d", 'ԛ': "q", 'ԝ': "w",
	// Greek: capitals that look like Latin capitals, small letters like small ones.
	'Α': "a", 'Β': "b", 'Ε': "e", 'Ζ': "z", 'Η': "h", 'Ι': "i", 'Κ': "k", 'Μ': "m",
	'Ν': "n", 'Ο': "o", 'Ρ': "p", 'Τ': "t", 'Υ': "y", 'Χ': "x", 'Ϲ': "c", 'Ϳ': "j",
	'α': "a", 'β': "b", 'γ': "y", 'ε': "e", 'η': "n", 'ι': "i", 'κ': "k", 'μ': "u",
	'ν': "v", 'ο': "o", 'ρ': "p", 'τ': "t", 'υ': "u", 'χ': "x", 'ω': "w", 'ϲ': "c",
	'ϳ': "j", 'ϵ': "e",
	// Armenian.
	'Օ': "o", 'Ս': "u", 'Տ': "s", 'Լ': "l",
	'ա': "w", 'ց': "g", 'հ': "h", 'ո': "n", 'ռ': "n", 'ս': "u", 'օ': "o", 'զ': "q",
	// Cherokee capitals (their small letters, U+AB70–ABBF, are added at init).
	'Ꭺ': "a", 'Ᏼ': "b", 'Ꮯ': "c", 'Ꭰ': "d", 'Ꭼ': "e", 'Ꮐ': "g", 'Ᏻ': "g", 'Ꮋ': "h",
	'Ꭵ': "i", 'Ꭻ': "j", 'Ꮶ': "k", 'Ꮮ': "l", 'Ꮇ': "m", 'Ꮲ': "p", 'Ꭱ': "r", 'Ꮢ': "r",
	'Ꮪ': "s", 'Ꮥ': "s", 'Ꭲ': "t", 'Ꮩ': "v", 'Ꮃ': "w", 'Ꮤ': "w", 'Ꭹ': "y", 'Ꮍ': "y",
	'Ꮓ': "z",
	// Latin small capitals, look-alike and stroked letters (no decomposition).
	'ᴀ': "a", 'ʙ': "b", 'ᴄ': "c", 'ᴅ': "d", 'ᴇ': "e", 'ꜰ': "f", 'ɢ': "g", 'ʜ': "h",
	'ɪ': "i", 'ᴊ': "j", 'ᴋ': "k", 'ʟ': "l", 'ᴍ': "m", 'ɴ': "n", 'ᴏ': "o", 'ᴘ': "p",
	'ꞯ': "q", 'ʀ': "r", 'ꜱ': "s", 'ᴛ': "t", 'ᴜ': "u", 'ᴠ': "v", 'ᴡ': "w", 'ʏ': "y",
	'ᴢ': "z",
	'ı': "i", 'ɡ': "g", 'ȷ': "j", 'ɑ': "a", 'ɩ': "i", 'ɛ': "e", 'ǀ': "l", 'ø': "o", 'đ': "d",
	'ħ': "h", 'ł': "l", 'ŧ': "t", 'ƀ': "b", 'ɨ': "i", 'ʉ': "u", 'ɇ': "e", 'ƶ': "z",
	'ǥ': "g", 'ȼ': "c", 'ɍ': "r", 'ɏ': "y", 'ɉ': "j",
	// Spaces, dashes, dots and slashes (no backslash: see foldMarkers).
	'\u00A0': " ", '\u1680': " ", '\u2028': " ", '\u2029': " ", '\u202F': " ", '\u205F': " ", '\u3000': " ",
	'\u2010': "-", '\u2011': "-", '\u2012': "-", '\u2013': "-", '\u2014': "-", '\u2015': "-", '\u2212': "-",
	'\uFE58': "-", '\uFE63': "-",
	'\u00B7': ".", '\u2022': ".", '\u2024': ".", '\u2027': ".", '\u2219': ".", '\u30FB': ".", '\uFF65': ".",
	'\u2215': "/", '\u2044': "/",
}

// foldLow is the composed table for runes below len(foldLow): 0 = keep,
// 1 = drop (a combining mark), k ≥ 2 = foldStrs[k-2]. foldHigh holds the
// rest ("" = drop).
var (
	foldLow  [0x2500]uint16
	foldStrs []string
	foldHigh = map[rune]string{}
	// hostFold maps the compatibility forms that IDNA maps onto ASCII
	// letters and digits (①②⑦ → 127, ⓛⓞⓒⓐⓛ → local, 𝟏 → 1): see foldHost.
	hostFold = map[rune]string{}
)

// combining are the combining-mark blocks foldMarkers drops.
var combining = [][2]rune{{0x0300, 0x036F}, {0x0483, 0x0489}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x20D0, 0x20FF}, {0xFE20, 0xFE2F}}

func init() {
	table := map[rune]string{}
	for r, s := range confusables {
		table[r] = s
	}
	for r := 0x2000; r <= 0x200A; r++ {
		table[rune(r)] = " "
	}
	for c := rune(0x13A0); c <= 0x13F5; c++ { // Cherokee small letters
		if s, ok := confusables[c]; ok {
			if c < 0x13F0 {
				table[c-0x13A0+0xAB70] = s
			} else {
				table[c+8] = s
			}
		}
	}
	for i := rune(0); i < 26; i++ { // negative circled/squared, regional indicators
		for _, base := range []rune{0x1F150, 0x1F170, 0x1F1E6} {
			table[base+i] = string('a' + i)
		}
	}
	// toASCII maps a decomposition onto lower-case ASCII through the table.
	toASCII := func(d string) (string, bool) {
		var b strings.Builder
		for _, c := range d {
			if s, ok := table[c]; ok {
				b.WriteString(s)
			} else if s, ok := table[unicode.ToLower(c)]; ok {
				b.WriteString(s)
			} else if c < utf8.RuneSelf {
				b.WriteByte(byte(unicode.ToLower(c)))
			} else {
				return "", false
			}
		}
		return b.String(), true
	}
	for _, d := range decompositions {
		if d.host {
			hostFold[d.r] = strings.ToLower(d.s)
		}
		if _, ok := table[d.r]; ok {
			continue
		}
		if s, ok := toASCII(d.s); ok {
			table[d.r] = s
		}
	}
	idx := map[string]uint16{}
	for r, s := range table {
		if r >= rune(len(foldLow)) {
			foldHigh[r] = s
			continue
		}
		k, ok := idx[s]
		if !ok {
			k = uint16(len(foldStrs) + 2)
			idx[s] = k
			foldStrs = append(foldStrs, s)
		}
		foldLow[r] = k
	}
	for _, c := range combining {
		for r := c[0]; r <= c[1]; r++ {
			if r < rune(len(foldLow)) {
				foldLow[r] = 1
			} else {
				foldHigh[r] = ""
			}
		}
	}
}

// foldRune returns the replacement of r (a rune as written, not lower-cased).
func foldRune(r rune) (string, bool) {
	if r < rune(len(foldLow)) {
		switch k := foldLow[r]; k {
		case 0:
			return "", false
		case 1:
			return "", true
		default:
			return foldStrs[k-2], true
		}
	}
	s, ok := foldHigh[r]
	return s, ok
}

// foldMarkers prepares text for the injection markers: lower-case, with
// fullwidth forms, letters that look like Latin letters (other scripts,
// mathematical, enclosed, small capitals, with diacritics) and look-alike
// spaces, dashes and dots folded to ASCII, combining marks and invisible
// characters removed, and JSON \uXXXX escapes of non-ASCII characters (and
// of < > & ', which JSON encoders escape) decoded. ASCII text without a
// \u escape costs what lower costs. Folding is idempotent: the result has
// no escape left to decode (decoding and folding repeat until none is,
// each round shortens the text).
func foldMarkers(s string) string {
	if asciiWithoutUEscape(s) {
		return lower(s)
	}
	if asciiPrefix(s) == len(s) {
		// Only < > & ' decoded (Go's encoder escapes them): one decoding
		// leaves nothing to decode, lower-casing neither. The decoded
		// copy is ours: lower-case it in place.
		b := decodeEscapes(s)
		if b == nil {
			return lower(s)
		}
		if d := unsafe.String(unsafe.SliceData(b), len(b)); asciiPrefix(d) == len(d) {
			for i, c := range b {
				if 'A' <= c && c <= 'Z' {
					b[i] = c + 'a' - 'A'
				}
			}
			return d
		}
	}
	s = foldRunes(decodeUnicodeEscapes(s))
	for hasUEscape(s) {
		d := decodeUnicodeEscapes(s)
		if len(d) == len(s) {
			break // nothing decoded
		}
		s = foldRunes(d)
	}
	return s
}

// asciiWithoutUEscape reports whether s is ASCII without a backslash
// followed by u or U, 8 bytes at a time (false also, rarely, for some
// texts with a backslash before "]u" or "]U").
func asciiWithoutUEscape(s string) bool {
	i := 0
	var prev uint64 // 0x80 when the byte before the word is a backslash
	for ; i+8 <= len(s); i += 8 {
		x := load8(s, i)
		if x&highBits != 0 {
			return false
		}
		bs := eqBytes(x, '\\')
		if bs|prev != 0 && (bs<<8|prev)&eqBytes(x|lowBits*0x20, 'u') != 0 {
			return false
		}
		prev = bs >> 56
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c|0x20 == 'u' && i > 0 && s[i-1] == '\\' {
			return false
		}
	}
	return true
}

// hasUEscape reports whether s has a backslash followed by u or U.
func hasUEscape(s string) bool {
	return strings.IndexByte(s, '\\') >= 0 && (strings.Contains(s, `\u`) || strings.Contains(s, `\U`))
}

// foldRunes is foldMarkers' per-rune fold (no escape decoding). Fullwidth
// and small reverse solidus stay as they are (never a new backslash).
func foldRunes(s string) string {
	k := asciiPrefix(s)
	b := make([]byte, k, len(s))
	for i := 0; i < k; i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	for _, r := range s[k:] {
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b = append(b, byte(r))
			continue
		}
		if r >= 0xFF01 && r <= 0xFF5E && r != 0xFF3C { // fullwidth ASCII
			c := byte(r - 0xFEE0)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			continue
		}
		if isInvisible(r) {
			continue
		}
		if t, ok := foldRune(r); ok {
			b = append(b, t...)
			continue
		}
		l := unicode.ToLower(r)
		if l != r {
			if t, ok := foldRune(l); ok {
				b = append(b, t...)
				continue
			}
		}
		b = utf8.AppendRune(b, l)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// decodeUnicodeEscapes decodes the JSON escapes \uXXXX (surrogate pairs
// too; \U as well) of non-ASCII characters and of < > & ' in s. A run of
// backslashes before the u counts as one: JSON text inside JSON (a tool
// returning JSON as its text) escapes the escape, "\\u043e".
func decodeUnicodeEscapes(s string) string {
	b := decodeEscapes(s)
	if b == nil {
		return s
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// decodeEscapes is decodeUnicodeEscapes into a new slice; nil when nothing
// is decoded.
func decodeEscapes(s string) []byte {
	var b []byte
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		r, end := escapeAt(s, i)
		if end < 0 {
			for i+1 < len(s) && s[i+1] == '\\' {
				i++
			}
			continue
		}
		if 0xD800 <= r && r < 0xDC00 && end < len(s) && s[end] == '\\' {
			if lo, e := escapeAt(s, end); e >= 0 && 0xDC00 <= lo && lo < 0xE000 {
				r, end = 0x10000+(r-0xD800)<<10+(lo-0xDC00), e
			}
		}
		if 0xD800 <= r && r < 0xE000 || r < utf8.RuneSelf && r != '<' && r != '>' && r != '&' && r != '\'' {
			i = end - 1
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[last:i]...)
		b = utf8.AppendRune(b, r)
		last = end
		i = end - 1
	}
	if b == nil {
		return nil
	}
	return append(b, s[last:]...)
}

// escapeAt parses a run of backslashes at s[i:], then u or U and 4 hex
// digits: the code unit and the end of the escape, or end -1.
func escapeAt(s string, i int) (rune, int) {
	for i < len(s) && s[i] == '\\' {
		i++
	}
	if i+5 > len(s) || s[i] != 'u' && s[i] != 'U' {
		return 0, -1
	}
	var r rune
	for _, c := range []byte(s[i+1 : i+5]) {
		if !isHex(c) {
			return 0, -1
		}
		r = r<<4 | rune(hexVal(c))
	}
	return r, i + 5
}
