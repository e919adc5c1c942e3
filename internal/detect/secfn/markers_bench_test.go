package secfn

import (
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// BenchmarkInjectionMarkers runs InjectionMarkers once over every distinct
// text (arguments, results, tool descriptions and schemas) of the
// evaluation corpus: benign traffic, non-English tickets, source code with
// option names close to injection phrases, and every disguised attack.
func BenchmarkInjectionMarkers(b *testing.B) {
	var texts []string
	seen := map[string]bool{}
	n := 0
	for _, e := range scenario.Eval(1, 10000).Plain() {
		for _, s := range []string{e.Arguments, e.Result, e.ToolDescription, e.ToolInputSchema} {
			if s != "" && !seen[s] {
				seen[s] = true
				texts = append(texts, s)
				n += len(s)
			}
		}
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range texts {
			InjectionMarkers(s)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(texts)), "ns/text")
}
