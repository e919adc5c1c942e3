package detect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// TestDumpFindings writes every finding of the shipped pack over the
// evaluation corpus (seeds 1–3, three time-shifted passes, 1 and 2 workers,
// MaxKeysPerRule default and 300) with the engine's counters to the file
// named by MCPWATCH_FINDINGS_DUMP, for a byte-for-byte comparison of two
// versions of the engine (a performance change must not change a result):
//
//	MCPWATCH_FINDINGS_DUMP=/tmp/new.txt go test -run TestDumpFindings ./internal/detect/
//
// Without the variable it runs seed 1 once and checks that the dump is
// deterministic (the same run twice gives the same bytes) and not empty.
func TestDumpFindings(t *testing.T) {
	path := os.Getenv("MCPWATCH_FINDINGS_DUMP")
	if path == "" {
		a, b := dumpFindings(t, []int64{1}, 1), dumpFindings(t, []int64{1}, 1)
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Fatalf("dump is empty or not deterministic (%d vs %d bytes)", len(a), len(b))
		}
		if !bytes.Contains(a, []byte(`"RuleID":"mcp-`)) {
			t.Fatal("no finding in the dump")
		}
		return
	}
	out := dumpFindings(t, []int64{1, 2, 3}, 3)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes to %s", len(out), path)
}

func dumpFindings(t *testing.T, seeds []int64, passes int) []byte {
	t.Helper()
	var buf bytes.Buffer
	ctx := context.Background()
	for _, seed := range seeds {
		corpus := scenario.Eval(seed, 10000).Plain()
		span := corpus[len(corpus)-1].Time.Sub(corpus[0].Time) + time.Minute
		for _, workers := range []int{1, 2} {
			for _, maxKeys := range []int{0, 300} {
				pack, err := detect.Load(detections.FS, ".")
				if err != nil {
					t.Fatal(err)
				}
				eng, err := detect.New(pack, detect.Options{Workers: workers, MaxKeysPerRule: maxKeys})
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&buf, "== seed %d workers %d maxkeys %d\n", seed, workers, maxKeys)
				batch := make([]event.Event, 0, 500)
				for pass := 0; pass < passes; pass++ {
					for k := 0; k < len(corpus); k += 500 {
						batch = batch[:0]
						for _, ev := range corpus[k:min(k+500, len(corpus))] {
							ev.Time = ev.Time.Add(time.Duration(pass) * span)
							batch = append(batch, ev)
						}
						fs, err := eng.Detect(ctx, batch)
						if err != nil {
							t.Fatal(err)
						}
						for _, f := range fs {
							line, err := json.Marshal(f)
							if err != nil {
								t.Fatal(err)
							}
							buf.Write(line)
							buf.WriteByte('\n')
						}
					}
				}
				fmt.Fprintf(&buf, "stats %+v\n", eng.Stats())
			}
		}
	}
	return buf.Bytes()
}
