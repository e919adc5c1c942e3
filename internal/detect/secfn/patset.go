package secfn

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// patSet is a list of regular expressions, each guarded by a literal it
// requires ("needle"): the regexp runs only when the lower-cased input
// contains the needle. One big alternation has no literal prefix and makes
// Go's regexp walk every byte with the NFA; this is 10–100× faster on the
// texts tool calls carry.
type patSet struct {
	pats []pat
	// bigram maps the first two bytes of every needle to a slot (0 = none);
	// byBigram[slot] lists the needles starting with those bytes, so one
	// pass over the input finds every needle that occurs (a multi-needle
	// search) instead of one strings.Contains per needle.
	bigram   map[uint16]uint8
	table    *[65536]uint8
	byBigram [][]needleRef
	// unslotted lists the patterns with a needle without a bigram slot
	// (searched with strings.Contains); the others are candidates only
	// when the one pass found one of their needles.
	unslotted []int
}

type needleRef struct {
	needle string
	pat    int
	split  bool // needleIndex: found when splitAt matches, not HasPrefix
	mid    bool // splitAt's mid
}

type pat struct {
	needles []string // any of them must occur in the lower-cased input; none = always run
	// also are further required literal sets: one of each must occur too
	// (e.g. `\brd\s+/s\b` needs "rd" and "/s"); checked after needles.
	also    [][]string
	slots   []uint8 // bigram slot of each needle (0 = needle shorter than 2 bytes)
	re      *regexp.Regexp
	onLower bool // run re on the lower-cased input (else on the original)
}

// maxPats bounds a set (match keeps one flag per pattern on the stack).
const maxPats = 256

// newPatSet compiles each alternative with flags (e.g. "(?i)"). With (?i)
// the expressions run on the lower-cased input, otherwise on the original.
func newPatSet(flags string, alts []string) *patSet {
	if len(alts) > maxPats {
		panic("secfn: too many patterns in one set")
	}
	ps := &patSet{bigram: map[uint16]uint8{}, table: new([65536]uint8), byBigram: make([][]needleRef, 1)}
	for _, a := range alts {
		re := regexp.MustCompile(flags + a)
		p := pat{needles: requiredLiterals(flags + a), re: re, onLower: strings.Contains(flags, "i")}
		p.also = otherLiteralSets(flags+a, p.needles)
		for _, n := range p.needles {
			var slot uint8
			if len(n) >= 2 {
				bg := uint16(n[0])<<8 | uint16(n[1])
				slot = ps.bigram[bg]
				if slot == 0 && len(ps.bigram) < 255 {
					slot = uint8(len(ps.bigram) + 1)
					ps.bigram[bg] = slot
					ps.table[bg] = slot
					ps.byBigram = append(ps.byBigram, nil)
				}
				if slot != 0 {
					ps.byBigram[slot] = append(ps.byBigram[slot], needleRef{needle: n, pat: len(ps.pats)})
				}
			}
			p.slots = append(p.slots, slot)
		}
		if len(p.needles) == 0 || slices.Contains(p.slots, 0) {
			ps.unslotted = append(ps.unslotted, len(ps.pats))
		}
		ps.pats = append(ps.pats, p)
	}
	return ps
}

// match reports whether any pattern matches; lower is strings.ToLower(orig).
// A pattern with needles runs only when one of them occurs in lower. Only
// the candidates are visited (the patterns whose needle the one pass found,
// and those with a needle it cannot find), so a text without any needle
// costs one pass, whatever the number of patterns. Which pattern matches
// first does not matter: the result is whether any does.
func (ps *patSet) match(orig, lower string) bool {
	var found [maxPats]bool // a needle of the pattern occurs (needles with a bigram slot)
	var cand [maxPats]uint8
	nc := 0
	for i := 0; i+1 < len(lower); i++ {
		s := ps.table[uint16(lower[i])<<8|uint16(lower[i+1])]
		if s == 0 {
			continue
		}
		for _, nr := range ps.byBigram[s] {
			if !found[nr.pat] && strings.HasPrefix(lower[i:], nr.needle) {
				found[nr.pat] = true
				cand[nc] = uint8(nr.pat)
				nc++
			}
		}
	}
	for _, i := range ps.unslotted {
		if found[i] {
			continue // already a candidate
		}
		p := &ps.pats[i]
		hit := len(p.needles) == 0
		for j, n := range p.needles {
			if p.slots[j] == 0 && strings.Contains(lower, n) { // no slot: search it
				hit = true
				break
			}
		}
		if hit {
			found[i] = true
			cand[nc] = uint8(i)
			nc++
		}
	}
	for _, i := range cand[:nc] {
		p := &ps.pats[i]
		if !containsOneOfEach(lower, p.also) {
			continue
		}
		in := orig
		if p.onLower {
			in = lower
		}
		if p.re.MatchString(in) {
			return true
		}
	}
	return false
}

func containsOneOfEach(s string, sets [][]string) bool {
	for _, set := range sets {
		hit := false
		for _, n := range set {
			if strings.Contains(s, n) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// otherLiteralSets returns, for an expression whose top level is a
// concatenation, the required literal sets of its parts other than
// chosen (lower-cased): every match contains one literal of each.
func otherLiteralSets(expr string, chosen []string) [][]string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat {
		return nil
	}
	key := func(n []string) string { return strings.Join(n, "\x00") }
	skip := key(chosen)
	var out [][]string
	cur := ""
	flush := func() {
		if cur != "" {
			if n := []string{strings.ToLower(cur)}; key(n) != skip {
				out = append(out, n)
			}
			cur = ""
		}
	}
	for _, sub := range re.Sub {
		if sub.Op == syntax.OpLiteral {
			cur += string(sub.Rune)
			continue
		}
		flush()
		n := needlesOf(sub)
		if len(n) == 0 {
			continue
		}
		for i := range n {
			n[i] = strings.ToLower(n[i])
		}
		if key(n) != skip {
			out = append(out, n)
		}
	}
	flush()
	return out
}

// requiredLiterals returns literals one of which every match must contain,
// lower-cased (nil if none is known).
func requiredLiterals(expr string) []string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	n := needlesOf(re.Simplify())
	for i := range n {
		n[i] = strings.ToLower(n[i])
	}
	return n
}

// score rates a needle set: the length of its shortest needle (0 = none).
func score(n []string) int {
	if len(n) == 0 {
		return 0
	}
	m := len(n[0])
	for _, x := range n {
		m = min(m, len(x))
	}
	return m
}

func needlesOf(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return needlesOf(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return needlesOf(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			n := needlesOf(s)
			if len(n) == 0 {
				return nil
			}
			out = append(out, n...)
		}
		return out
	case syntax.OpConcat:
		var best []string
		cur := ""
		for _, s := range re.Sub {
			if s.Op == syntax.OpLiteral {
				cur += string(s.Rune)
				if len(cur) > score(best) {
					best = []string{cur}
				}
				continue
			}
			cur = ""
			if n := needlesOf(s); score(n) > score(best) {
				best = n
			}
		}
		return best
	}
	return nil
}

// needleIndex finds which of a set of needles (≥ 2 bytes) occur in a text
// in one pass: the bigram at each position selects the needles to verify.
type needleIndex struct {
	table [65536]uint8 // bigram → slot in by (0 = no needle starts so)
	by    [][]needleRef
}

// add registers needle n for group g; false when the 255 slots are used up.
func (ni *needleIndex) add(n string, g int) bool {
	return ni.addRef(uint16(n[0])<<8|uint16(n[1]), needleRef{needle: n, pat: g})
}

// addSplit registers keyword kw for group g as split words (see splitAt)
// under every bigram such a word can start with: its first letter and a
// separator, and (mid) its first two letters.
func (ni *needleIndex) addSplit(kw string, g int, mid bool) bool {
	nr := needleRef{kw, g, true, mid}
	ok := !mid || ni.addRef(uint16(kw[0])<<8|uint16(kw[1]), nr)
	for i := 0; i < len(splitSeps); i++ {
		ok = ok && ni.addRef(uint16(kw[0])<<8|uint16(splitSeps[i]), nr)
	}
	return ok
}

// addRef registers nr under bigram bg; false when the 255 slots are used up.
func (ni *needleIndex) addRef(bg uint16, nr needleRef) bool {
	slot := ni.table[bg]
	if slot == 0 {
		if len(ni.by) > 255 {
			return false
		}
		slot = uint8(len(ni.by))
		ni.table[bg] = slot
		ni.by = append(ni.by, nil)
	}
	ni.by[slot] = append(ni.by[slot], nr)
	return true
}

// find reports, per group, whether one of its needles occurs in s (for a
// split keyword: whether splitAt matches at some position).
func (ni *needleIndex) find(s string) (found [maxPats]bool) {
	for i := 0; i+1 < len(s); i++ {
		slot := ni.table[uint16(s[i])<<8|uint16(s[i+1])]
		if slot == 0 {
			continue
		}
		for _, nr := range ni.by[slot] {
			if found[nr.pat] {
				continue
			}
			if nr.split {
				// Most bigram hits fail on the third byte: check it inline.
				if i+2 < len(s) {
					c := s[i+2]
					found[nr.pat] = (splitSep[c] || c == nr.needle[1] || c == nr.needle[2]) && splitAt(s[i:], nr.needle, nr.mid)
				}
			} else {
				found[nr.pat] = strings.HasPrefix(s[i:], nr.needle)
			}
		}
	}
	return found
}
