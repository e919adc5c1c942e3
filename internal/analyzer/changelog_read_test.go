package analyzer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestReadChangelogStopsAtLastMarker: a restore reads the committed
// records of a changelog partition, not those of an aborted transaction,
// and stops at the partition's end although a transaction marker, not a
// record, takes the last offset (the restore client keeps control
// records, as the detect role's does).
func TestReadChangelogStopsAtLastMarker(t *testing.T) {
	k := testbed.Kfake(t)
	ctx := context.Background()
	const topic = "state"
	if err := k.CreateTopic(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	pr := k.Client(t, kgo.TransactionalID("writer"), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := func(commit bool, keys ...string) {
		t.Helper()
		if err := pr.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			if err := pr.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v"), Partition: 0}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := pr.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "a", "b")
	txn(false, "aborted")
	txn(true, "c")
	cl := k.Client(t, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	done := make(chan struct{})
	var got []string
	var err error
	go func() {
		defer close(done)
		recs, e := readChangelog(ctx, cl, topic, []int32{0, 1})
		for _, r := range recs {
			got = append(got, string(r.Key))
		}
		err = e
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("readChangelog did not return")
	}
	if err != nil || fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("restored %v, %v; want [a b c]", got, err)
	}
}
