package event

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// captureTraceFiles lists every real OTLP traces capture (JSON and
// protobuf) of internal/event/testdata and ../shared/testdata/otlp.
func captureTraceFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, root := range []string{"testdata", filepath.Join("..", "..", "..", "shared", "testdata", "otlp")} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".pb")) &&
				!strings.Contains(p, "capture") && !strings.Contains(p, "golden") {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) < 10 {
		t.Fatalf("found only %d capture files", len(files))
	}
	return files
}

// TestValueEncoderMatchesMarshal: the single-pass arena encoder writes the
// same bytes as Marshal for every event of every capture and for events
// with every field set, and earlier values survive later encodes (a tiny
// chunk size forces many arena chunks).
func TestValueEncoderMatchesMarshal(t *testing.T) {
	var all []Event
	for _, f := range captureTraceFiles(t) {
		all = append(all, FromTraces(loadTraces(t, f), MapOptions{Tenant: "acme", ReceivedAt: received}).Events...)
	}
	for i := 0; i < 3; i++ {
		var e Event
		fillAll(t, &e, i)
		all = append(all, e)
	}
	all = append(all, Event{})
	big := all[0]
	big.Arguments = strings.Repeat("a", 300<<10) // larger than a chunk and the scratch
	all = append(all, big)
	if len(all) < 50 {
		t.Fatalf("only %d events", len(all))
	}
	for _, chunk := range []int{0, 100, 4096} {
		enc := ValueEncoder{ChunkSize: chunk}
		// A first round fills the arena; Reuse lets the second overwrite it.
		for i := len(all) - 1; i >= 0; i-- {
			enc.Encode(&all[i])
		}
		enc.Reuse()
		vals := make([][]byte, len(all))
		for i := range all {
			vals[i] = enc.Encode(&all[i])
		}
		for i := range all {
			want, err := Marshal(all[i : i+1])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(vals[i], want) {
				t.Fatalf("chunk %d, event %d (%s): Encode differs from Marshal", chunk, i, all[i].EventID)
			}
		}
	}
}
