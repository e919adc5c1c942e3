package redact

import (
	"math/rand"
	"regexp"
	"strings"
	"testing"
)

// The hand-written GitHub token scan finds exactly what the regexp it
// replaces finds, on random texts built from the pattern's pieces.
func TestScanGitHubTokensMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(githubTokenPattern)
	pieces := []string{"ghp_", "gho_", "ghx_", "github_pat_", "g", "h", "_", " ", "-", "a", "Z", "9", ".",
		strings.Repeat("aB3", 12), strings.Repeat("x", 36), strings.Repeat("Q1", 30), strings.Repeat("k", 250), "_z"}
	rng := rand.New(rand.NewSource(1))
	check := func(s string) {
		var want [][2]int
		for _, m := range re.FindAllStringIndex(s, -1) {
			want = append(want, [2]int{m[0], m[1]})
		}
		var got [][2]int
		for _, sp := range scanGitHubTokens(s) {
			got = append(got, [2]int{sp.start, sp.end})
		}
		if len(got) != len(want) {
			t.Fatalf("%q: got %v, want %v", s, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: got %v, want %v", s, got, want)
			}
		}
	}
	for _, s := range []string{"", "ghp_", "ghp_" + strings.Repeat("a", 36), "xghp_" + strings.Repeat("a", 36),
		"ghp_" + strings.Repeat("a", 255), "ghp_" + strings.Repeat("a", 256), "ghp_" + strings.Repeat("a", 40) + "_",
		"github_pat_" + strings.Repeat("a_", 30), "github_pat_" + strings.Repeat("a", 256)} {
		check(s)
	}
	for n := 0; n < 20000; n++ {
		var b strings.Builder
		for k := rng.Intn(12); k >= 0; k-- {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		check(b.String())
	}
}
