package analyzer

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// The inputs the ingest role encodes come back equal, in order, across
// records and batches decoded with one inputDecoder; an undecodable record is skipped
// alone.
func TestInputRecordsRoundTrip(t *testing.T) {
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := detect.New(pack, detect.Options{Repartition: true})
	if err != nil {
		t.Fatal(err)
	}
	evs := scenario.Eval(3, 3000).Plain()
	_, ins, err := eng.DetectSplit(context.Background(), evs)
	if err != nil || len(ins) < 100 {
		t.Fatalf("%d inputs, %v", len(ins), err)
	}
	recs, err := inputRecords("t", 6, pack, ins)
	if err != nil {
		t.Fatal(err)
	}
	// Per partition, order is kept; compare per partition.
	want := map[int32][]detect.Input{}
	for _, in := range ins {
		p := kafka.PartitionOf(in.Key(), 6)
		want[p] = append(want[p], in)
	}
	var bad []string
	dec := &inputDecoder{undecodable: func(r *kgo.Record, err error) { bad = append(bad, err.Error()) }}
	for round := 0; round < 2; round++ { // the second batch reuses the slices
		for p, w := range want {
			var mine []*kgo.Record
			for _, r := range recs {
				if kafka.PartitionOf(r.Key, 6) == p {
					mine = append(mine, r)
				}
			}
			var got []detect.Input
			for _, r := range append(mine, &kgo.Record{Value: []byte{0xff, 0x01}}) {
				for _, in := range dec.decode(r) {
					ev := *in.Event // valid until the next decode
					in.Event = &ev
					got = append(got, in)
				}
			}
			if len(got) != len(w) {
				t.Fatalf("partition %d: %d inputs decoded, want %d", p, len(got), len(w))
			}
			for i := range got {
				g, x := got[i], w[i]
				tr := x.Trimmed(pack)
				if g.RuleID != x.RuleID || g.RuleVersion != x.RuleVersion || g.Tenant != x.Tenant || g.Group != x.Group ||
					g.Conds != x.Conds || g.Event.EventID != tr.EventID || g.Event.Arguments != tr.Arguments ||
					g.Event.ToolName != tr.ToolName || !g.Event.Time.Equal(tr.Time) || len(g.Event.AttrKeys) != 0 {
					t.Fatalf("partition %d input %d: got %+v (event %s), want %+v (event %s)", p, i, g, g.Event.EventID, x, tr.EventID)
				}
			}
		}
	}
	if len(bad) != 2*len(want) {
		t.Fatalf("undecodable records reported %d times, want %d", len(bad), 2*len(want))
	}
}

// TestPartitionCountSeesANewTopic: a role asks for a topic's partitions
// before it exists and again right after it is created. The answer must
// come from the brokers, not from a client cache that keeps "unknown
// topic" for MetadataMinAge (the detect role waited 5 s at every start).
func TestPartitionCountSeesANewTopic(t *testing.T) {
	k := testbed.Kfake(t)
	cl := k.Client(t)
	ctx := context.Background()
	if n, err := partitionCount(ctx, cl, "late"); err == nil {
		t.Fatalf("partitions of a missing topic: %d, no error", n)
	}
	if err := k.CreateTopic(ctx, "late", 5); err != nil {
		t.Fatal(err)
	}
	if n, err := partitionCount(ctx, cl, "late"); err != nil || n != 5 {
		t.Fatalf("partitions right after creation: %d, %v; want 5", n, err)
	}
}
