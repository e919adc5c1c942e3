package event

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// captureTraceFiles lists every real OTLP traces capture (JSON and
// protobuf) under testdata.
func captureTraceFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".pb")) &&
			!strings.Contains(p, "capture") && !strings.Contains(p, "golden") {
			files = append(files, p)
		}
		return nil
	})
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

// TestEncodeAppendGroups: EncodeAppend extends the last value while it
// fits (one request whose records decode to the events in order, the
// concatenation of their single values), and starts a new value when
// prev is not the last value, would exceed maxLen, or the chunk is full.
func TestEncodeAppendGroups(t *testing.T) {
	var all []Event
	for _, f := range captureTraceFiles(t) {
		all = append(all, FromTraces(loadTraces(t, f), MapOptions{Tenant: "acme", ReceivedAt: received}).Events...)
	}
	for _, chunk := range []int{0, 2048} {
		enc := ValueEncoder{ChunkSize: chunk}
		var groups [][]byte
		var members [][]Event
		var cur []byte
		for i := range all {
			v := enc.EncodeAppend(cur, &all[i], 8<<10)
			single, err := Marshal(all[i : i+1])
			if err != nil {
				t.Fatal(err)
			}
			if len(v) == len(cur)+len(single) && len(cur) > 0 {
				groups[len(groups)-1] = v
				members[len(members)-1] = append(members[len(members)-1], all[i])
			} else {
				if len(v) != len(single) {
					t.Fatalf("chunk %d, event %d: value of %d bytes is neither alone (%d) nor appended (%d+%d)", chunk, i, len(v), len(single), len(cur), len(single))
				}
				groups = append(groups, v)
				members = append(members, []Event{all[i]})
			}
			cur = v
		}
		if len(groups) >= len(all) {
			t.Fatalf("chunk %d: %d events in %d values: nothing grouped", chunk, len(all), len(groups))
		}
		for g, v := range groups {
			if len(v) > 8<<10 && len(members[g]) > 1 {
				t.Fatalf("chunk %d: group %d is %d bytes, over maxLen", chunk, g, len(v))
			}
			var want []byte
			for i := range members[g] {
				one, _ := Marshal(members[g][i : i+1])
				want = append(want, one...)
			}
			if !bytes.Equal(v, want) {
				t.Fatalf("chunk %d: group %d differs from its members' values concatenated", chunk, g)
			}
			got, err := Unmarshal(v)
			if err != nil || len(got) != len(members[g]) {
				t.Fatalf("chunk %d: group %d decodes to %d events (%v), want %d", chunk, g, len(got), err, len(members[g]))
			}
			for i := range got {
				if got[i].EventID != members[g][i].EventID {
					t.Fatalf("chunk %d: group %d event %d is %s, want %s", chunk, g, i, got[i].EventID, members[g][i].EventID)
				}
			}
		}
	}
	// prev that is not the last value is never extended.
	var enc ValueEncoder
	a := enc.Encode(&all[0])
	enc.Encode(&all[1])
	if v := enc.EncodeAppend(a, &all[2], 1<<20); &v[0] == &a[0] {
		t.Fatal("extended a value that was not the last one")
	}
}

// TestConstAttrs: a prepared encoding is the bytes strAttr writes, in both
// passes, and other values (and "") fall back to strAttr.
func TestConstAttrs(t *testing.T) {
	for _, c := range []*constAttrs{&eventNameAttrs, &kindAttrs, &sourceAttrs, &observerAttrs, &outcomeAttrs} {
		for _, v := range append([]string{"", "other", strings.ToUpper(c.vals[0])}, c.vals...) {
			want := pbWriter{grow: true}
			want.strAttr(c.key, v)
			got := pbWriter{grow: true}
			got.constAttr(c, v)
			n := pbWriter{counting: true}
			n.constAttr(c, v)
			if !bytes.Equal(got.b[:got.off], want.b[:want.off]) || n.n != want.off {
				t.Errorf("%s=%q: %x (counted %d), want %x", c.key, v, got.b[:got.off], n.n, want.b[:want.off])
			}
		}
	}
}
