package testbed

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceN produces n records to topic and waits for every ack.
func produceN(t *testing.T, k *Kafka, topic string, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := k.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeAll reads topic from the start until want records arrived and
// returns their values.
func consumeAll(t *testing.T, k *Kafka, topic string, want int) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	return got
}

func checkValues(t *testing.T, got map[string]bool, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d distinct records, want %d", len(got), n)
	}
	for i := range n {
		if !got[fmt.Sprintf("value-%d", i)] {
			t.Fatalf("record value-%d missing", i)
		}
	}
}

func TestKfakeProduceConsumeAndRestart(t *testing.T) {
	k := Kfake(t)
	ctx := context.Background()
	if err := k.CreateTopic(ctx, "events", 3); err != nil {
		t.Fatal(err)
	}
	produceN(t, k, "events", 0, 500)
	checkValues(t, consumeAll(t, k, "events", 500), 500)

	brokers := append([]string(nil), k.Brokers...)
	k.Stop()
	if err := pingKafka(ctx, brokers); err == nil {
		t.Fatal("kfake still answers after Stop")
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(k.Brokers) != fmt.Sprint(brokers) {
		t.Fatalf("restart moved brokers from %v to %v", brokers, k.Brokers)
	}
	// Records from before the restart are still there, and new ones append.
	produceN(t, k, "events", 500, 100)
	checkValues(t, consumeAll(t, k, "events", 600), 600)
}

func TestApacheKafkaProduceConsumeAndRestart(t *testing.T) {
	k := ApacheKafka(t)
	ctx := context.Background()
	if err := k.CreateTopic(ctx, "events", 2); err != nil {
		t.Fatal(err)
	}
	produceN(t, k, "events", 0, 300)
	checkValues(t, consumeAll(t, k, "events", 300), 300)
	if k.Kind != "apache" {
		t.Logf("MCPWATCH_TEST_KAFKA set: not restarting an external Kafka")
		return
	}
	k.Stop()
	if err := pingKafka(ctx, k.Brokers); err == nil {
		t.Fatal("apache kafka still answers after Stop")
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	produceN(t, k, "events", 300, 50)
	checkValues(t, consumeAll(t, k, "events", 350), 350)
}

// A port taken between choosing and binding: the first start finds its
// controller port in use, StartApacheKafka starts again on other ports.
func TestApacheKafkaRetriesWhenAPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	kafkaPorts = func(n int) ([]int, error) {
		calls++
		ps, err := freePorts(n)
		if calls == 1 && err == nil {
			ps[1] = taken.Addr().(*net.TCPAddr).Port // the controller's
		}
		return ps, err
	}
	defer func() { kafkaPorts = freePorts }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := StartApacheKafka(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	if calls != 2 {
		t.Errorf("ports chosen %d times, want 2 (one retry)", calls)
	}
	if err := pingKafka(ctx, k.Brokers); err != nil {
		t.Errorf("kafka started on the second attempt does not answer: %v", err)
	}
}
