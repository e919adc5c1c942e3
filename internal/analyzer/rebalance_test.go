package analyzer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestRebalanceLosesNothing adds a second analyzer to the group while the
// first is consuming: partitions move between them mid-stream, and every
// event ends up stored and every offset committed.
func TestRebalanceLosesNothing(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 4, Topic: "rb", DeadLetterTopic: "rb.dlq"}
	ensureTopics(t, kc)
	evs := testEvents("r", 6000)
	for i := range evs { // spread keys over the partitions
		evs[i].AgentID = fmt.Sprintf("agent-%d", i%23)
	}
	cfg := Config{BatchRows: 300, BatchInterval: 100 * time.Millisecond}
	a1, stop1 := running(t, Options{Kafka: kc, Store: st, Config: cfg})
	produce(t, k.Brokers, "rb", evs[:3000])
	testbed.WaitUntil(t, "first analyzer consuming", time.Minute, func() (bool, string) { return a1.Inserted() > 0, "" })
	assigned := make(chan struct{}, 1)
	a2, stop2 := running(t, Options{Kafka: kc, Store: st, Config: cfg,
		OnAssigned: func(role string, _ int) {
			if role == RoleIngest {
				select {
				case assigned <- struct{}{}:
				default:
				}
			}
		}})
	select {
	case <-assigned: // partitions moved from the first analyzer
	case <-time.After(time.Minute):
		t.Fatal("second analyzer got no partitions")
	}
	produce(t, k.Brokers, "rb", evs[3000:])
	testbed.WaitUntil(t, "all events stored", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		return n == uint64(len(evs)), fmt.Sprint(n)
	})
	stop1()
	stop2()
	t.Logf("inserted: first %d, second %d", a1.Inserted(), a2.Inserted())
	if a2.Inserted() == 0 {
		t.Fatal("second analyzer stored nothing after taking partitions")
	}
	if a1.Inserted()+a2.Inserted() < uint64(len(evs)) {
		t.Fatalf("inserted %d+%d < %d", a1.Inserted(), a2.Inserted(), len(evs))
	}
	adm, err := kafka.NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offs, err := kadm.NewClient(adm).FetchOffsets(context.Background(), DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != int64(len(evs)) {
		t.Fatalf("committed %d, want %d", committed, len(evs))
	}
}
