package redact

import (
	"math/rand"
	"strings"
	"testing"
)

// refPrefilter is the previous prefilter scan (a bitset of the triggers'
// first two bytes tested at every byte, whole triggers compared at each
// hit), kept as the reference that the two-bytes-per-step scan must agree
// with. Trigger registration (bits, fold) is the prefilter's own.
type refPrefilter struct {
	p      prefilter
	bigram [1 << 10]uint64
}

func (r *refPrefilter) add(s string, fold bool) uint64 {
	bit := r.p.add(s, fold)
	if bit == 0 {
		return 0
	}
	if fold {
		s = strings.ToLower(s)
	}
	c, c1 := s[0], s[1]
	r.setBigram(c, c1)
	if fold {
		r.setBigram(upper(c), c1)
		r.setBigram(c, upper(c1))
		r.setBigram(upper(c), upper(c1))
	}
	return bit
}

func (r *refPrefilter) setBigram(a, b byte) {
	k := uint16(a)<<8 | uint16(b)
	r.bigram[k>>6] |= 1 << (k & 63)
}

func (r *refPrefilter) scan(s string) uint64 {
	if len(s) < 2 {
		return 0
	}
	var found uint64
	c0 := s[0]
	for i := 1; i < len(s); i++ {
		c1 := s[i]
		k := uint16(c0)<<8 | uint16(c1)
		c0 = c1
		if r.bigram[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		found |= r.matchAt(s, i-1, found)
	}
	return found
}

// matchAt compares every trigger not yet found with s at i.
func (r *refPrefilter) matchAt(s string, i int, found uint64) uint64 {
	var add uint64
	for ti, t := range r.p.trigs {
		bit := uint64(1) << ti
		if found&bit != 0 || len(s)-i < len(t.s) {
			continue
		}
		if t.fold && asciiLower(s[i:i+len(t.s)]) == t.s || !t.fold && s[i:i+len(t.s)] == t.s {
			add |= bit
		}
	}
	return add
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// refFor registers r's triggers in the reference in the order New does.
func refFor(t *testing.T, r *Redactor) *refPrefilter {
	t.Helper()
	ref := &refPrefilter{}
	for _, d := range r.detectors {
		var mask uint64
		for _, tr := range d.triggers {
			mask |= ref.add(tr, d.fold)
		}
		if mask != d.mask {
			t.Fatalf("%s: reference trigger bits %x, prefilter %x", d.kind, mask, d.mask)
		}
	}
	return ref
}

// prefilterConfigs: the built-in detectors, and extra rules with two-byte,
// one-byte, case-sensitive, non-ASCII and too many triggers.
func prefilterConfigs() map[string]Config {
	many := make([]string, 40)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + string(rune('A'+i/26)) + "q"
	}
	return map[string]Config{
		"builtin": {},
		"extra": {Rules: []Rule{
			{Kind: "two", Pattern: "id=(\\d+)", Triggers: []string{"id", "Zz", "~!"}},
			{Kind: "one", Pattern: "x", Triggers: []string{"x"}},
			{Kind: "utf8", Pattern: "éé+|äö", Triggers: []string{"éé", "ÄÖ"}},
			{Kind: "three", Pattern: "abc", Triggers: []string{"ABC", "a b", "\x00\xff\x80"}},
		}},
		"overflow": {Rules: []Rule{{Kind: "many", Pattern: "q", Triggers: many}}},
	}
}

// prefilterPieces builds random texts: triggers (in both cases), their
// prefixes and suffixes, the test secrets and single bytes.
func prefilterPieces(r *Redactor) []string {
	pieces := []string{" ", "\"", ":", "=", "x", "Q", "q", "~", "é", "\xff", "\x00", "ab", "A",
		`{"password":"`, `"api_key": "`, `\"token\":\"`, `"Authorization":"Bearer `, "--password=", "?access_token=",
		"DB_PWD=", "Bearer ", "postgres://u:", "@h", "hunter22", "0123456789abcdefXYZ",
		awsKeyID, awsSecret, gcpKey, azureStorage, azureSecret, ghp, ghPAT, slackBot, slackHook, anthropic,
		openaiProj, openaiLegacy, stripeLive, jwt, pemKey, bearerTok, cleanArgs, dirtyArgs, loadArgs, loadResult, loadDirty}
	pieces = append(pieces, scannerSeeds...)
	for _, t := range r.pre.trigs {
		pieces = append(pieces, t.s, strings.ToUpper(t.s), t.s[:len(t.s)-1], t.s[1:])
	}
	return pieces
}

// TestPrefilterMatchesReference: the two-bytes-per-step scan finds exactly
// the triggers the byte-by-byte scan finds.
func TestPrefilterMatchesReference(t *testing.T) {
	for name, cfg := range prefilterConfigs() {
		t.Run(name, func(t *testing.T) {
			r := mustNew(t, cfg)
			ref := refFor(t, r)
			pieces := prefilterPieces(r)
			check := func(s string) {
				t.Helper()
				var pos [maxTriggers]int32
				got, want := r.pre.scanPos(s, &pos), ref.scan(s)
				if got != want {
					t.Fatalf("%q: scan %x, reference %x", s, got, want)
				}
				for ti, tr := range r.pre.trigs {
					if got&(1<<ti) != 0 && int(pos[ti]) != firstIndex(s, tr) {
						t.Fatalf("%q: trigger %q at %d, first occurrence at %d", s, tr.s, pos[ti], firstIndex(s, tr))
					}
				}
				checkScanFrom(t, r, s, got, &pos)
			}
			for _, p := range pieces {
				for pad := 0; pad < 3; pad++ {
					check(strings.Repeat("-", pad) + p)
					check(strings.Repeat("-", pad) + p + "-")
				}
			}
			check(triggeredClean)
			check(cleanLarge)
			rng := rand.New(rand.NewSource(2))
			for n := 0; n < 20000; n++ {
				var b strings.Builder
				for k := rng.Intn(10); k >= 0; k-- {
					b.WriteString(pieces[rng.Intn(len(pieces))])
				}
				check(b.String())
			}
		})
	}
}

func firstIndex(s string, t trigger) int {
	if t.fold {
		return strings.Index(asciiLower(s), t.s)
	}
	return strings.Index(s, t.s)
}

// checkScanFrom: each hand-written scanner started at the first occurrence
// of its detector's triggers finds what it finds from the start.
func checkScanFrom(t *testing.T, r *Redactor, s string, found uint64, pos *[maxTriggers]int32) {
	t.Helper()
	for _, d := range r.detectors {
		if d.scan == nil || d.mask&found == 0 {
			continue
		}
		from := len(s)
		for ti := range r.pre.trigs {
			if d.mask&found&(1<<ti) != 0 {
				from = min(from, int(pos[ti]))
			}
		}
		got, want := d.scan(s, from, nil), d.scan(s, 0, nil)
		if len(got) != len(want) {
			t.Fatalf("%s %q: from %d found %v, from 0 %v", d.kind, s, from, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s %q: from %d found %v, from 0 %v", d.kind, s, from, got, want)
			}
		}
	}
}

// TestFindMatchesUnfiltered: Find with the prefilter (and the scanners
// started at their triggers) finds what every detector run on the whole
// text finds.
func TestFindMatchesUnfiltered(t *testing.T) {
	for name, cfg := range prefilterConfigs() {
		t.Run(name, func(t *testing.T) {
			r, all := mustNew(t, cfg), mustNew(t, cfg)
			for i := range all.detectors {
				all.detectors[i].always = true
			}
			all.always = true
			pieces := prefilterPieces(r)
			rng := rand.New(rand.NewSource(3))
			for n := 0; n < 5000; n++ {
				var b strings.Builder
				for k := rng.Intn(10); k >= 0; k-- {
					b.WriteString(pieces[rng.Intn(len(pieces))])
				}
				s := b.String()
				got, want := r.Find(s), all.Find(s)
				if len(got) != len(want) {
					t.Fatalf("%q: found %v, unfiltered %v", s, got, want)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%q: found %v, unfiltered %v", s, got, want)
					}
				}
			}
		})
	}
}
