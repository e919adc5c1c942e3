package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current mapping")

// goldenInputs maps every input the mapping is pinned on (each real
// capture, the attribute-table requests, the traceloop/gateway corners,
// deep nesting) to a function mapping it with o.
func goldenInputs(t *testing.T) map[string]func(MapOptions) Batch {
	in := map[string]func(MapOptions) Batch{}
	seen := map[string]bool{} // some captures repeat byte for byte
	for _, f := range captureTraceFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(raw)] {
			continue
		}
		seen[string(raw)] = true
		rel := strings.TrimPrefix(f, "testdata")
		name := "capture-event" + strings.ReplaceAll(strings.ReplaceAll(rel, string(filepath.Separator), "-"), ".", "_")
		td := loadTraces(t, f)
		in[name] = func(o MapOptions) Batch { return FromTraces(td, o) }
	}
	for name, td := range syntheticTraces() {
		in["traces-"+name] = func(o MapOptions) Batch { return FromTraces(td, o) }
	}
	in["traces-deep"] = func(o MapOptions) Batch { return FromTraces(deepTraces(), o) }
	for name, ld := range syntheticLogs() {
		in["logs-"+name] = func(o MapOptions) Batch { return FromLogs(ld, o) }
	}
	return in
}

// goldenJSON renders a batch deterministically (encoding/json sorts map keys).
func goldenJSON(t *testing.T, b Batch) []byte {
	out, err := json.MarshalIndent(struct {
		Dropped     int
		DropReasons map[string]int
		Events      []Event
	}{b.Dropped, b.DropReasons, b.Events}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestGolden pins the mapping's output on every input of goldenInputs, with
// and without a sender tenant, to testdata/golden (written by the pdata
// mapper before the direct protobuf mapper replaced it). Run with -update
// only for an intended change of the mapping, and review the diff.
func TestGolden(t *testing.T) {
	inputs := goldenInputs(t)
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 30 {
		t.Fatalf("only %d golden inputs", len(names))
	}
	opts := map[string]MapOptions{"tenant": {Tenant: "acme", ReceivedAt: received}, "resource": {ReceivedAt: received}}
	seen := map[string]bool{}
	for _, n := range names {
		for on, o := range opts {
			file := filepath.Join("testdata", "golden", fmt.Sprintf("%s.%s.json", n, on))
			seen[filepath.Base(file)] = true
			got := goldenJSON(t, inputs[n](o))
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) && i < len(wl); i++ {
					if gl[i] != wl[i] {
						t.Errorf("%s: line %d differs\n got  %.300s\n want %.300s", file, i+1, gl[i], wl[i])
						break
					}
				}
				if len(gl) != len(wl) {
					t.Errorf("%s: %d lines, want %d", file, len(gl), len(wl))
				}
			}
		}
	}
	// No stale golden file stays behind unchecked.
	files, _ := os.ReadDir(filepath.Join("testdata", "golden"))
	for _, f := range files {
		if !seen[f.Name()] {
			t.Errorf("testdata/golden/%s has no input", f.Name())
		}
	}
}
