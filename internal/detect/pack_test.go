package detect_test

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

func findingIDs(fs []event.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.RuleID + "/" + f.FindingID
	}
	sort.Strings(out)
	return out
}

// TestIndexNeverChangesResults runs the real rule pack over the labelled
// corpus with and without the condition index: the findings must be equal.
func TestIndexNeverChangesResults(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	events := scenario.Eval(7, 3000).Plain()
	run := func(noIndex bool) ([]string, detect.Stats) {
		e, err := detect.New(pack, detect.Options{DisableIndex: noIndex})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := e.Detect(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		return findingIDs(fs), e.Stats()
	}
	with, st1 := run(false)
	without, st2 := run(true)
	if len(with) == 0 {
		t.Fatal("no findings at all on a corpus with attacks")
	}
	if !reflect.DeepEqual(with, without) {
		t.Fatalf("index changed results: %d findings with, %d without", len(with), len(without))
	}
	if st1.Evaluations >= st2.Evaluations {
		t.Errorf("index did not save evaluations: %d vs %d", st1.Evaluations, st2.Evaluations)
	}
	t.Logf("%d events, %d findings; evaluations %d indexed vs %d not", len(events), len(with), st1.Evaluations, st2.Evaluations)
}

// TestBatchingDoesNotChangeResults: one big batch or many small ones (as the
// analyzer polls) give the same findings — state carries across batches.
func TestBatchingDoesNotChangeResults(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	events := scenario.Eval(3, 2000).Plain()
	e1, _ := detect.New(pack, detect.Options{})
	all, _ := e1.Detect(context.Background(), events)
	e2, _ := detect.New(pack, detect.Options{})
	var parts []event.Finding
	for i := 0; i < len(events); i += 37 {
		fs, _ := e2.Detect(context.Background(), events[i:min(i+37, len(events))])
		parts = append(parts, fs...)
	}
	if !reflect.DeepEqual(findingIDs(all), findingIDs(parts)) {
		t.Fatalf("batching changed results: %d vs %d", len(all), len(parts))
	}
}

// TestEmbeddedPackInlineTests runs every rule's inline tests from the embedded pack.
func TestEmbeddedPackInlineTests(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range detect.RunTests(pack) {
		if !r.Passed() {
			t.Errorf("%s / %s: want %d got %d %s", r.RuleID, r.Test, r.Want, r.Got, r.Err)
		}
	}
}

// TestWorkersDoNotChangeResults: parallel evaluation gives the same findings,
// in the same order, as one worker.
func TestWorkersDoNotChangeResults(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	events := scenario.Eval(5, 2000).Plain()
	run := func(workers int) []string {
		e, _ := detect.New(pack, detect.Options{Workers: workers})
		fs, err := e.Detect(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.FindingID
		}
		return out
	}
	one, four := run(1), run(4)
	if len(one) == 0 || !reflect.DeepEqual(one, four) {
		t.Fatalf("1 worker: %d findings, 4 workers: %d (or different order)", len(one), len(four))
	}
}
