package detect

import (
	"os"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// TestNativeAgreesWithCEL evaluates every condition and exception of the
// embedded pack on the scenario corpus (benign sessions and every attack)
// both ways: whenever the native pre-evaluation decides a condition, CEL
// must give the same result. It also reports how often native decides.
func TestNativeAgreesWithCEL(t *testing.T) {
	pack, err := Load(os.DirFS("../../detections"), ".")
	if err != nil {
		t.Fatal(err)
	}
	events := scenario.Eval(1, 3000).Plain()
	var ec evalCtx
	act := activation{ec: &ec}
	decided, total, trues := 0, 0, 0
	for i := range events {
		ec.reset(&events[i])
		for _, r := range pack.Rules {
			act.lists = r.listsVal.(ref.Val)
			for _, c := range append(append([]*compiled{}, r.conds...), r.exceptions...) {
				total++
				if c.nat == nil {
					continue
				}
				n := c.nat.eval(&ec)
				if n == triUnknown {
					continue
				}
				decided++
				out, _, err := c.prg.Eval(&act)
				want := err == nil && out == types.True
				if (n == triTrue) != want {
					t.Fatalf("rule %s, event %s: native %v, CEL %v (err %v): %s", r.ID, events[i].EventID, n, out, err, oneLine(c.src))
				}
				if want {
					trues++
				}
			}
		}
	}
	if trues == 0 || decided == 0 {
		t.Fatalf("native decided %d conditions, %d true: corpus does not exercise it", decided, trues)
	}
	t.Logf("%d events: native decided %d of %d condition evaluations (%d true)", len(events), decided, total, trues)
}
