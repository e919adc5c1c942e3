// Package redact finds secrets (cloud keys, tokens, private keys, JWTs,
// passwords in URLs, bearer values, password-like JSON fields) in tool
// arguments and results and in the identity fields (tool name, session id,
// user id, ...), and replaces each with
// [REDACTED:<kind>:<first 8 hex of HMAC-SHA256(key, secret)>]: with one
// per-deployment key equal secrets still correlate, while without the key
// nobody who reads the data can confirm a guessed secret. It also caps the
// size of arguments and results. See docs/event.md.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// DefaultMaxBytes is the default cap of Arguments and Result (64 KiB).
const DefaultMaxBytes = 64 << 10

// scanSlack is how far past the size cap the text is still scanned, so that
// a secret straddling the cut is redacted before the cut.
const scanSlack = 16 << 10

// TruncatedMarker ends a value cut to the size cap.
const TruncatedMarker = "…[TRUNCATED]"

// Config configures a Redactor. The zero value enables every built-in
// detector with 64 KiB caps.
type Config struct {
	// DisabledDetectors lists built-in kinds (see Kinds) to turn off.
	// Default: none.
	DisabledDetectors []string `yaml:"disabled_detectors"`
	// Rules are extra detectors, run after the built-in ones.
	Rules []Rule `yaml:"rules"`
	// MaxArgumentBytes caps Event.Arguments after redaction, in bytes.
	// 0 means DefaultMaxBytes (64 KiB); negative is invalid.
	MaxArgumentBytes int `yaml:"max_argument_bytes"`
	// MaxResultBytes caps Event.Result after redaction, in bytes.
	// 0 means DefaultMaxBytes (64 KiB); negative is invalid.
	MaxResultBytes int `yaml:"max_result_bytes"`
	// KeyFile is a file holding the fingerprint key (at least MinKeyBytes
	// bytes; surrounding whitespace is ignored). A missing file is created
	// with a new random key (mode 0600). Default "": see KeyEnv.
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable holding the key, instead of
	// KeyFile. With neither set the key is random per process, so
	// fingerprints correlate only within one process run (LoadKey).
	KeyEnv string `yaml:"key_env"`
}

// Rule is a configured extra detector.
type Rule struct {
	// Kind names the secret in the replacement and the tag; [a-z0-9_]+.
	Kind string `yaml:"kind"`
	// Pattern is a Go regexp (RE2 syntax). If it has a capturing group,
	// the first group is the secret; otherwise the whole match is.
	Pattern string `yaml:"pattern"`
	// Triggers, if set, are substrings (case-insensitive) of which one must
	// occur for the pattern to run at all. Default: always run.
	Triggers []string `yaml:"triggers"`
}

// Match is one secret found in a text.
type Match struct {
	Kind  string
	Start int // byte offsets of the secret in the text
	End   int
	Hash  string // first 8 hex of HMAC-SHA256(key, secret)
}

// Redactor is safe for concurrent use.
type Redactor struct {
	detectors []detector
	pre       prefilter
	always    bool // some detector always runs
	maxArgs   int
	maxResult int
	macs      sync.Pool // *mac, keyed with the Redactor's key
}

// mac is one HMAC-SHA256 state with scratch space, pooled.
type mac struct {
	h   hash.Hash
	buf [256]byte
	sum [sha256.Size]byte
}

var kindRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// Kinds lists the built-in detector kinds.
func Kinds() []string {
	var out []string
	for _, d := range builtin() {
		if !slices.Contains(out, d.kind) {
			out = append(out, d.kind)
		}
	}
	return out
}

// New validates cfg and builds a Redactor with a random key: its
// fingerprints correlate only among themselves. The collector uses NewKeyed
// with the deployment's key (LoadKey).
func New(cfg Config) (*Redactor, error) {
	return NewKeyed(cfg, randomKey())
}

// NewKeyed validates cfg, reporting every problem at once, and builds a
// Redactor whose fingerprints are keyed with key (at least MinKeyBytes).
func NewKeyed(cfg Config, key []byte) (*Redactor, error) {
	var errs []error
	if len(key) < MinKeyBytes {
		errs = append(errs, fmt.Errorf("key: %d bytes, need at least %d", len(key), MinKeyBytes))
	}
	if cfg.KeyFile != "" && cfg.KeyEnv != "" {
		errs = append(errs, errors.New("key_file and key_env: set one, not both"))
	}
	known := Kinds()
	disabled := map[string]bool{}
	for _, k := range cfg.DisabledDetectors {
		if !slices.Contains(known, k) {
			errs = append(errs, fmt.Errorf("disabled_detectors: unknown detector %q (known: %s)", k, strings.Join(known, ", ")))
		}
		disabled[k] = true
	}
	if cfg.MaxArgumentBytes < 0 {
		errs = append(errs, fmt.Errorf("max_argument_bytes: must be >= 0, got %d", cfg.MaxArgumentBytes))
	}
	if cfg.MaxResultBytes < 0 {
		errs = append(errs, fmt.Errorf("max_result_bytes: must be >= 0, got %d", cfg.MaxResultBytes))
	}
	r := &Redactor{maxArgs: cfg.MaxArgumentBytes, maxResult: cfg.MaxResultBytes}
	key = slices.Clone(key)
	r.macs.New = func() any { return &mac{h: hmac.New(sha256.New, key)} }
	if r.maxArgs == 0 {
		r.maxArgs = DefaultMaxBytes
	}
	if r.maxResult == 0 {
		r.maxResult = DefaultMaxBytes
	}
	for _, d := range builtin() {
		if !disabled[d.kind] {
			r.detectors = append(r.detectors, d)
		}
	}
	for i, rule := range cfg.Rules {
		if !kindRE.MatchString(rule.Kind) {
			errs = append(errs, fmt.Errorf("rules[%d].kind: %q must match [a-z0-9_]+", i, rule.Kind))
		}
		re, err := regexp.Compile(rule.Pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules[%d].pattern: cannot compile: %w", i, err))
			continue
		}
		if rule.Pattern == "" {
			errs = append(errs, fmt.Errorf("rules[%d].pattern: must not be empty", i))
			continue
		}
		d := detector{kind: rule.Kind, re: re, fold: true}
		if re.NumSubexp() > 0 {
			d.group = 1
		}
		for _, t := range rule.Triggers {
			if t != "" {
				d.triggers = append(d.triggers, strings.ToLower(t))
			}
		}
		r.detectors = append(r.detectors, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i := range r.detectors {
		d := &r.detectors[i]
		d.tag = "secret:" + d.kind
		for _, t := range d.triggers {
			bit := r.pre.add(t, d.fold)
			if bit == 0 {
				d.always = true
			}
			d.mask |= bit
		}
		if len(d.triggers) == 0 {
			d.always = true
		}
		r.always = r.always || d.always
	}
	return r, nil
}

// prefilter finds, in one pass over a text, which detector triggers occur
// in it; only the detectors whose triggers occur run their regexp.
type prefilter struct {
	trigs []trigger
	// byFold lists the triggers by their first two bytes, case folded
	// (foldKey): byFold[starts[k]] for the pair k; starts[k] == 0: none.
	starts     [1 << 14]uint8
	byFold     [][]uint8
	bucketBits [maxTriggers + 1]uint64 // the trigger bits in each byFold list
	// pairs says, for the byte pair at an even offset i (index a | b<<8),
	// where a trigger may start: at i (the pair is a trigger's first two
	// bytes), at i-1 (its second and third) or at i+1 (the pair ends in
	// the first byte of a two-byte trigger). Every occurrence of a trigger
	// has one of these pairs at an even offset.
	pairs [1 << 16]uint8
}

// Where a pair hit lets a trigger start.
const (
	atBefore = 1 << iota // one byte before the pair
	atPair               // at the pair
	atAfter              // one byte after the pair's start
)

type trigger struct {
	s    string // lowercase when fold
	fold bool
	// The first up to 8 bytes: the trigger occurs at s[i] (with 8 bytes
	// left) iff load64(s[i:])|lower&mask == head, where lower sets the
	// case bit of the trigger's letters when fold.
	head, lower, mask uint64
}

func newTrigger(s string, fold bool) trigger {
	t := trigger{s: s, fold: fold}
	for i := 0; i < len(s) && i < 8; i++ {
		t.head |= uint64(s[i]) << (8 * i)
		t.mask |= 0xff << (8 * i)
		if fold && s[i] >= 'a' && s[i] <= 'z' {
			t.lower |= 0x20 << (8 * i)
		}
	}
	return t
}

// load64 reads s[0:8] little-endian (one load).
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// maxTriggers is the number of distinct triggers the one-pass prefilter
// tracks; detectors with further triggers, or with a one-byte trigger,
// always run.
const maxTriggers = 64

// add registers a trigger and returns its bit, or 0 when the table is full.
func (p *prefilter) add(s string, fold bool) uint64 {
	if fold {
		s = strings.ToLower(s)
	}
	for i, t := range p.trigs {
		if t.s == s && t.fold == fold {
			return 1 << i
		}
	}
	if len(p.trigs) == maxTriggers || len(s) < 2 {
		return 0 // untracked: the detector always runs
	}
	i := uint8(len(p.trigs))
	p.trigs = append(p.trigs, newTrigger(s, fold))
	k := foldKey(s[0], s[1])
	if p.starts[k] == 0 {
		if len(p.byFold) == 0 {
			p.byFold = append(p.byFold, nil)
		}
		p.starts[k] = uint8(len(p.byFold))
		p.byFold = append(p.byFold, nil)
	}
	p.byFold[p.starts[k]] = append(p.byFold[p.starts[k]], i)
	p.bucketBits[p.starts[k]] |= 1 << i
	p.setPair(s[0], s[1], fold, atPair)
	if len(s) >= 3 {
		p.setPair(s[1], s[2], fold, atBefore)
	} else {
		for x := 0; x < 256; x++ {
			p.setPair(byte(x), s[0], fold, atAfter)
		}
	}
	return 1 << i
}

// setPair marks the pair a, b (and with fold its case variants).
func (p *prefilter) setPair(a, b byte, fold bool, where uint8) {
	p.pairs[pairKey(a, b)] |= where
	if fold {
		p.pairs[pairKey(upper(a), b)] |= where
		p.pairs[pairKey(a, upper(b))] |= where
		p.pairs[pairKey(upper(a), upper(b))] |= where
	}
}

func pairKey(a, b byte) uint16 { return uint16(a) | uint16(b)<<8 }

// foldKey maps a byte pair to 14 bits, equal for the ASCII case variants
// of a pair (and for some other pairs: it only narrows the candidates).
func foldKey(a, b byte) uint16 { return uint16(a&0x5f) | uint16(b&0x5f)<<7 }

// scan returns the set of triggers occurring in s. It looks up the byte
// pairs at even offsets (two bytes per step, four steps per iteration) and
// compares whole triggers only where a pair says one may start.
func (p *prefilter) scan(s string) uint64 {
	var pos [maxTriggers]int32
	return p.scanPos(s, &pos)
}

// scanPos is scan that also sets pos[t] to the offset of the first
// occurrence of each trigger t found.
func (p *prefilter) scanPos(s string, pos *[maxTriggers]int32) uint64 {
	var found uint64
	pairs := &p.pairs
	i := 0
	for ; i+8 <= len(s); i += 8 {
		q := s[i : i+8]
		w0 := pairs[pairKey(q[0], q[1])]
		w1 := pairs[pairKey(q[2], q[3])]
		w2 := pairs[pairKey(q[4], q[5])]
		w3 := pairs[pairKey(q[6], q[7])]
		if w0|w1|w2|w3 == 0 {
			continue
		}
		if w0 != 0 {
			found = p.hit(s, i, w0, found, pos)
		}
		if w1 != 0 {
			found = p.hit(s, i+2, w1, found, pos)
		}
		if w2 != 0 {
			found = p.hit(s, i+4, w2, found, pos)
		}
		if w3 != 0 {
			found = p.hit(s, i+6, w3, found, pos)
		}
	}
	for ; i+2 <= len(s); i += 2 {
		if w := pairs[pairKey(s[i], s[i+1])]; w != 0 {
			found = p.hit(s, i, w, found, pos)
		}
	}
	return found
}

// hit adds to found (and pos) the triggers starting where the pair hit w
// at s[i] allows.
func (p *prefilter) hit(s string, i int, w uint8, found uint64, pos *[maxTriggers]int32) uint64 {
	if w&atBefore != 0 && i > 0 {
		found = p.try(s, i-1, found, pos)
	}
	if w&atPair != 0 {
		found = p.try(s, i, found, pos)
	}
	if w&atAfter != 0 {
		found = p.try(s, i+1, found, pos)
	}
	return found
}

// try adds to found the triggers starting at s[i], unless none can (no
// trigger starts with the pair there, or all that do are found already).
func (p *prefilter) try(s string, i int, found uint64, pos *[maxTriggers]int32) uint64 {
	if i+1 >= len(s) {
		return found
	}
	b := p.starts[foldKey(s[i], s[i+1])]
	if p.bucketBits[b]&^found == 0 {
		return found
	}
	return found | p.matchAt(s, i, b, found, pos)
}

// matchAt returns the bits of the triggers (not yet in found) starting at
// s[i] (those in byFold[bucket], the bucket of the pair at s[i]), and sets
// their pos to i.
func (p *prefilter) matchAt(s string, i int, bucket uint8, found uint64, pos *[maxTriggers]int32) uint64 {
	var add uint64
	for _, ti := range p.byFold[bucket] {
		bit := uint64(1) << ti
		if found&bit != 0 {
			continue
		}
		t := &p.trigs[ti]
		if len(s)-i < len(t.s) {
			continue
		}
		if len(s)-i >= 8 {
			if (load64(s[i:])|t.lower)&t.mask != t.head {
				continue
			}
			if len(t.s) <= 8 {
				add |= bit
				pos[ti] = int32(i)
				continue
			}
		}
		if t.fold {
			if equalFoldLower(s[i:i+len(t.s)], t.s) {
				add |= bit
				pos[ti] = int32(i)
			}
		} else if s[i:i+len(t.s)] == t.s {
			add |= bit
			pos[ti] = int32(i)
		}
	}
	return add
}

// equalFoldLower compares s with the lowercase ASCII t, ignoring case.
func equalFoldLower(s, t string) bool {
	for i := 0; i < len(t); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// Find returns the secrets in s, ordered by position, without overlaps
// (an earlier detector wins over a later one on the same bytes).
func (r *Redactor) Find(s string) []Match {
	var buf [4]match
	ms := r.find(s, buf[:0])
	if len(ms) == 0 {
		return nil
	}
	out := make([]Match, len(ms))
	for i, m := range ms {
		out[i] = Match{Kind: r.detectors[m.det].kind, Start: m.start, End: m.end, Hash: hex.EncodeToString(m.sum[:])}
	}
	return out
}

// match is a Match before its kind and hash are spelled out.
type match struct {
	det        int // index in Redactor.detectors
	start, end int
	sum        [4]byte // first bytes of sha256(secret)
}

// minSecretLen: no detector matches a shorter text.
const minSecretLen = 8

// find appends the secrets in s to out as Find orders them.
func (r *Redactor) find(s string, out []match) []match {
	if len(s) < minSecretLen {
		return out
	}
	var pos [maxTriggers]int32
	found := r.pre.scanPos(s, &pos)
	if found == 0 && !r.always {
		return out
	}
	var spans []span // reused by the scanners
	for i := range r.detectors {
		d := &r.detectors[i]
		if !d.always && d.mask&found == 0 {
			continue
		}
		if d.scan != nil {
			from := 0
			if !d.always {
				from = len(s)
				for b := d.mask & found; b != 0; b &= b - 1 {
					from = min(from, int(pos[bits.TrailingZeros64(b)]))
				}
			}
			spans = d.scan(s, from, spans[:0])
			for _, sp := range spans {
				// The overlap test first: it is cheaper than the validators.
				if overlaps(out, sp.start, sp.end) {
					continue
				}
				secret := s[sp.start:sp.end]
				if d.valid != nil && !d.valid(secret) || d.validKey != nil && !d.validKey(s[sp.keyStart:sp.keyEnd]) {
					continue
				}
				out = append(out, match{det: i, start: sp.start, end: sp.end, sum: r.sum4(secret)})
			}
			continue
		}
		for _, loc := range d.re.FindAllStringSubmatchIndex(s, -1) {
			start, end := loc[2*d.group], loc[2*d.group+1]
			if start < 0 || end <= start {
				continue
			}
			if overlaps(out, start, end) {
				continue
			}
			secret := s[start:end]
			if d.valid != nil && !d.valid(secret) {
				continue
			}
			if d.validKey != nil && loc[2*d.keyGroup] >= 0 && !d.validKey(s[loc[2*d.keyGroup]:loc[2*d.keyGroup+1]]) {
				continue
			}
			out = append(out, match{det: i, start: start, end: end, sum: r.sum4(secret)})
		}
	}
	// Matches never overlap, so their starts differ and the order is total.
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b match) int { return a.start - b.start })
	}
	return out
}

func overlaps(ms []match, start, end int) bool {
	for _, m := range ms {
		if start < m.end && m.start < end {
			return true
		}
	}
	return false
}

// sum4 returns the first 4 bytes of HMAC-SHA256(key, secret), hashing a
// pooled copy of short secrets (no allocation).
func (r *Redactor) sum4(secret string) (p [4]byte) {
	m := r.macs.Get().(*mac)
	m.h.Reset()
	if len(secret) <= len(m.buf) {
		m.h.Write(m.buf[:copy(m.buf[:], secret)])
	} else {
		m.h.Write([]byte(secret))
	}
	copy(p[:], m.h.Sum(m.sum[:0]))
	clear(m.buf[:min(len(secret), len(m.buf))]) // no secret left in the pool
	r.macs.Put(m)
	return p
}

// Redact returns s with every secret replaced, and the kinds found (each
// once, in order of first appearance).
func (r *Redactor) Redact(s string) (string, []string) {
	var buf [4]match
	ms := r.find(s, buf[:0])
	if len(ms) == 0 {
		return s, nil
	}
	var kinds []string
	for _, m := range ms {
		if k := r.detectors[m.det].kind; !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return r.replace(s, ms), kinds
}

// replace returns s with the matches replaced by
// [REDACTED:<kind>:<8 hex>].
func (r *Redactor) replace(s string, ms []match) string {
	var b strings.Builder
	b.Grow(len(s) + 32*len(ms))
	var hx [8]byte
	prev := 0
	for _, m := range ms {
		b.WriteString(s[prev:m.start])
		b.WriteString("[REDACTED:")
		b.WriteString(r.detectors[m.det].kind)
		b.WriteByte(':')
		hex.Encode(hx[:], m.sum[:])
		b.Write(hx[:])
		b.WriteByte(']')
		prev = m.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

// Apply redacts e in place: Arguments, Result, the extra attribute values
// and the identity fields (event.IdentityStrings and the scopes: a session
// id or user id that is a token is stored as its marker, which still
// correlates). It adds the tag secret:<kind> per kind found, keeps (or
// sets) ArgumentsSize/ResultSize to the original byte counts, and cuts
// Arguments and Result to the configured caps (tags truncated:arguments /
// truncated:result).
func (r *Redactor) Apply(e *event.Event) {
	fields := e.IdentityStrings()
	for i := range fields {
		if len(*fields[i]) >= minSecretLen {
			r.identity(e, fields[i:])
			break
		}
	}
	for i, v := range e.Scopes {
		if red, ok := r.redactTagging(e, v); ok {
			e.Scopes[i] = red
		}
	}
	if e.Arguments != "" {
		if e.ArgumentsSize == 0 {
			e.ArgumentsSize = clampU32(len(e.Arguments))
		}
		e.Arguments = r.field(e, e.Arguments, r.maxArgs, "truncated:arguments")
	}
	if e.Result != "" {
		if e.ResultSize == 0 {
			e.ResultSize = clampU32(len(e.Result))
		}
		e.Result = r.field(e, e.Result, r.maxResult, "truncated:result")
	}
	for i, v := range e.AttrValues {
		if red, ok := r.redactTagging(e, v); ok {
			e.AttrValues[i] = red
		}
	}
}

// identity redacts the identity fields. They are short and nearly always
// clean: one trigger scan each (sharing its scratch), and the detectors
// only where a trigger occurs.
func (r *Redactor) identity(e *event.Event, fields []*string) {
	var pos [maxTriggers]int32
	for _, p := range fields {
		if len(*p) < minSecretLen || !r.always && r.pre.scanPos(*p, &pos) == 0 {
			continue
		}
		if red, ok := r.redactTagging(e, *p); ok {
			*p = red
		}
	}
}

func (r *Redactor) field(e *event.Event, s string, max int, truncTag string) string {
	scan := s
	if len(scan) > max+scanSlack {
		scan = scan[:max+scanSlack]
	}
	red, _ := r.redactTagging(e, scan)
	if len(red) > max || len(scan) < len(s) {
		red = Truncate(red, max)
		e.AddTag(truncTag)
	}
	return red
}

// redactTagging is Redact that adds the tag secret:<kind> to e per kind
// found; ok reports whether there was any.
func (r *Redactor) redactTagging(e *event.Event, s string) (red string, ok bool) {
	var buf [4]match
	ms := r.find(s, buf[:0])
	if len(ms) == 0 {
		return s, false
	}
	for _, m := range ms {
		e.AddTag(r.detectors[m.det].tag)
	}
	return r.replace(s, ms), true
}

// Truncate cuts s to at most max bytes including TruncatedMarker: at a
// UTF-8 boundary, not inside a JSON escape (\uXXXX, \") and not inside a
// [REDACTED:…] marker, so the prefix stays readable and never shows part
// of a secret or of a marker.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len(TruncatedMarker)
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	// Not inside a redaction marker.
	if i := strings.LastIndex(s[:n], "[REDACTED:"); i >= 0 && !strings.Contains(s[i:n], "]") {
		n = i
	}
	// Not inside a backslash escape: back off over a partial \uXXXX or \x.
	for k := n - 1; k >= 0 && k >= n-6; k-- {
		if s[k] == '\\' {
			// Count the backslashes before k to know whether s[k] escapes.
			bs := 0
			for j := k; j >= 0 && s[j] == '\\'; j-- {
				bs++
			}
			if bs%2 == 1 {
				need := 2
				if k+1 < len(s) && s[k+1] == 'u' {
					need = 6
				}
				if k+need > n {
					n = k
				}
			}
			break
		}
	}
	return s[:n] + TruncatedMarker
}

func clampU32(n int) uint32 {
	if n > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(n)
}
