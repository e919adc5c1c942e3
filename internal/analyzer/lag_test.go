package analyzer

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestGroupLagWhileNothingCommits: the lag of a group that consumes but
// cannot commit (its batches never finish) is read from the brokers on a
// timer and shows the whole backlog, then drops to 0 once it commits. The
// old metric only moved when a poll returned, and read 0 through a stall.
func TestGroupLagWhileNothingCommits(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: "lag-ev", DeadLetterTopic: "lag-ev.dlq"}
	ensureTopics(t, kc)
	produce(t, k.Brokers, "lag-ev", testEvents("a", 600))
	release := make(chan struct{})
	a, stop := running(t, Options{Kafka: kc, Store: st,
		Config:       Config{Roles: []string{RoleIngest}, LagInterval: 100 * time.Millisecond, BatchRows: 100000, BatchInterval: 100 * time.Millisecond},
		BeforeCommit: func() { <-release }})
	sum := func() float64 {
		var s float64
		for p := range 3 {
			s += testutil.ToFloat64(a.m.groupLag.WithLabelValues(DefaultGroup, "lag-ev", fmt.Sprint(p)))
		}
		return s
	}
	testbed.WaitUntil(t, "the backlog in the lag metric", time.Minute, func() (bool, string) { return sum() == 600, fmt.Sprint(sum()) })
	close(release)
	testbed.WaitUntil(t, "lag back to 0 after the commit", time.Minute, func() (bool, string) { return sum() == 0, fmt.Sprint(sum()) })
	stop()
}
