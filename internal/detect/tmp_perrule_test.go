package detect_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

func TestTmpPerRule(t *testing.T) {
	pack, _ := detect.Load(detections.FS, ".")
	evs := scenario.Benign(1, 3000).Plain()
	var sample []event.Event
	for _, e := range evs {
		if e.Method == "tools/call" {
			sample = append(sample, e)
		}
	}
	sample = sample[:500]
	type r struct {
		id string
		d  time.Duration
		n  uint64
	}
	var out []r
	for _, rule := range pack.Rules {
		eng, _ := detect.New(&detect.Pack{Rules: []*detect.Rule{rule}, Lists: pack.Lists}, detect.Options{})
		st := time.Now()
		for k := 0; k < 4; k++ {
			eng.Detect(context.Background(), sample)
		}
		out = append(out, r{rule.ID, time.Since(st) / time.Duration(4*len(sample)), eng.Stats().Evaluations / uint64(4*len(sample))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].d > out[j].d })
	for _, x := range out {
		t.Logf("%-45s %8v evals/event %d", x.id, x.d, x.n)
	}
}
