package analyzer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// BenchmarkIngest compares, in the same run against the same ClickHouse
// server, the analyzer's Kafka → ClickHouse ingest of N events (one record
// per event, pre-filled in kfake: the collector's worst case, every event
// of a request from another agent; it writes one agent's events of a
// request as one record) with the
// ceiling: a raw clickhouse-go columnar insert of the same rows in batches
// of the same size (PrepareBatch, Column(i).Append of typed slices, Send),
// the columns built from the []event.Event inside the clock, as the
// analyzer must, into slices reused from batch to batch (as the analyzer's
// InsertEvents reuses them). Each iteration writes into fresh databases; the two sides
// alternate which goes first, and background merges of one side finish
// (off the clock) before the other starts. Reported: both rows/s and their
// ratio.
//
//	go test -p 1 -run '^$' -bench BenchmarkIngest -benchtime 2x -count 5 ./internal/analyzer/
func BenchmarkIngest(b *testing.B) {
	const n = 300_000
	const batchRows = DefaultBatchRows
	evs := testEvents("b", n)
	k := testbed.Kfake(b)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 6, Topic: "bench", DeadLetterTopic: "bench.dlq"}
	ensureTopics(b, kc)
	{
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.DefaultProduceTopic("bench"),
			kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
		if err != nil {
			b.Fatal(err)
		}
		for i := range evs {
			v, err := event.Marshal(evs[i : i+1])
			if err != nil {
				b.Fatal(err)
			}
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(evs[i].PartitionKey()), Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		cl.Close()
		if total != n {
			b.Fatalf("topic holds %d records, want %d", total, n)
		}
	}
	cols := store.EventColumns()
	insertSQL := ""
	for i, c := range cols {
		if i > 0 {
			insertSQL += ", "
		}
		insertSQL += c
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	var ceilingDur, analyzerDur time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		ch1 := testbed.ClickHouse(b)
		st1 := openStore(b, ch1.Addr, ch1.Database)
		conn := st1.Conn()
		ch2 := testbed.ClickHouse(b)
		st2 := openStore(b, ch2.Addr, ch2.Database)
		b.StartTimer()

		// Ceiling: raw columnar inserts of the same rows, each batch's
		// columns built from []event.Event inside the clock (the analyzer
		// builds them too).
		ceiling := func() {
			var bufs store.EventColumnBuffers // reused across batches, as InsertEvents does
			start := time.Now()
			now := start.UTC().Truncate(time.Second)
			for i := 0; i < n; i += batchRows {
				batch, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+ch1.Database+".events ("+insertSQL+")")
				if err != nil {
					b.Fatal(err)
				}
				for ci, c := range bufs.Fill(evs[i:min(i+batchRows, n)], now) {
					if err := batch.Column(ci).Append(c); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Send(); err != nil {
					b.Fatal(err)
				}
			}
			ceilingDur += time.Since(start)
			b.StopTimer()
			// The parts just written are merged in the background; let the
			// server finish before the other side runs, off the clock.
			waitMerges(b, conn)
			b.StartTimer()
		}
		if it%2 == 0 { // alternate which side goes first
			ceiling()
		}

		// The analyzer, from Kafka, with a fresh consumer group.
		assigned := make(chan time.Time, 1)
		a, err := New(Options{Kafka: kc, Store: st2, Logger: log,
			OnAssigned: func(role string, _ int) {
				if role != RoleIngest {
					return
				}
				select {
				case assigned <- time.Now():
				default:
				}
			},
			Config: Config{Group: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), it), AdminAddr: "-", BatchRows: batchRows,
				Retention: RetentionConfig{Disabled: true}}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		// The clock starts when the consumer got its partitions (joining a
		// group is a one-off cost, not ingest throughput).
		var startAt time.Time
		select {
		case startAt = <-assigned:
		case <-time.After(time.Minute):
			b.Fatal("no partitions assigned")
		}
		for a.Inserted() < n {
			time.Sleep(2 * time.Millisecond)
		}
		analyzerDur += time.Since(startAt)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if a.Inserted() != n {
			b.Fatalf("analyzer inserted %d, want %d", a.Inserted(), n)
		}
		b.StopTimer()
		waitMerges(b, conn)
		b.StartTimer()
		if it%2 == 1 {
			ceiling()
		}
	}
	b.StopTimer()
	ceiling := float64(n*b.N) / ceilingDur.Seconds()
	got := float64(n*b.N) / analyzerDur.Seconds()
	b.ReportMetric(ceiling, "ceiling_rows/s")
	b.ReportMetric(got, "analyzer_rows/s")
	b.ReportMetric(100*got/ceiling, "%_of_ceiling")
}

// waitMerges waits until the server runs no background merge (bounded, so
// a stuck merge only skews the figures instead of hanging the benchmark).
func waitMerges(b *testing.B, conn driver.Conn) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.merges").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
