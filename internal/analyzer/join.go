package analyzer

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mcpwatch/mcpwatch/internal/calljoin"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
)

// The call join (docs/analyzer.md, "Call join"; internal/calljoin): the
// ingest role diverts the halves of calls whose client and server
// observations were exported separately to the calls topic, keyed by
// tenant/call_id; the join loop holds them by call until the peer arrives
// (or call_join_wait passes), completes their identity and produces them
// back to the events topic keyed by their completed agent, tagged so the
// ingest role stores them this time.

// HeaderCallNotice marks a calls-topic record that only tells the join a
// client observation's identity: the observation itself was stored.
const HeaderCallNotice = "mcpwatch-call-notice"

// roleJoin labels the join loop's metrics (it runs with the ingest role).
const roleJoin = "join"

// divert removes from b the halves the join completes (calljoin.Pairs.Decide)
// and encodes them, and the notices of the client halves kept, as calls
// topic records (b.calls), produced before b's offsets are committed. It
// runs once per batch, before enrichment: enrichment's server memory must
// not hide a client half, and no per-agent state learns from an
// observation that comes back with another agent.
func (a *Analyzer) divert(b *batch) {
	if b.diverted || !a.joinOn || len(b.events) == 0 {
		b.diverted = true
		return
	}
	b.diverted = true
	now := time.Now()
	evs := b.events
	w, e0 := 0, 0
	for ri, n := range b.spans {
		kept := 0
		for i := e0; i < e0+n; i++ {
			e := &evs[i]
			if len(e.Tags) > 0 {
				a.pairs.Observe(now, e)
			}
			d := a.pairs.Decide(now, e)
			if d != calljoin.Keep {
				rec := evs[i : i+1]
				if d == calljoin.KeepAndNotify {
					rec = []event.Event{calljoin.Notice(e)}
				}
				v, err := event.Marshal(rec)
				if err != nil {
					// Cannot happen for a decoded event; keep it rather
					// than lose it.
					a.log.Warn("ingest: cannot encode a call half; stored unjoined", "err", err)
					d = calljoin.Keep
				} else {
					r := &kgo.Record{Topic: a.o.Kafka.CallsTopic, Key: []byte(calljoin.CallsKey(e)), Value: v}
					if d == calljoin.KeepAndNotify {
						r.Headers = []kgo.RecordHeader{{Key: HeaderCallNotice, Value: []byte("stored")}}
						a.m.joinDiverted.WithLabelValues("notice").Inc()
					} else {
						a.m.joinDiverted.WithLabelValues("half").Inc()
					}
					b.calls = append(b.calls, r)
				}
			}
			if d == calljoin.Divert {
				continue
			}
			if w != i {
				evs[w] = evs[i]
			}
			w++
			kept++
		}
		e0 += n
		b.spans[ri] = kept
	}
	clear(evs[w:])
	b.events = evs[:w]
}

// produceCalls produces b's calls-topic records (acknowledged before the
// commit; a crash in between produces them again: the join holds a
// duplicate observation once, and a replayed release has the same event
// ids).
func (a *Analyzer) produceCalls(ctx context.Context, cl *kgo.Client, b *batch) error {
	if b.callsDone || len(b.calls) == 0 {
		b.callsDone = true
		return nil
	}
	if err := a.retry(ctx, "produce call halves to the calls topic", func(ctx context.Context) error {
		return cl.ProduceSync(ctx, b.calls...).FirstErr()
	}); err != nil {
		return err
	}
	b.callsDone = true
	return nil
}

// callsTopicReady reports whether the calls topic exists. With
// create_topics it was just created and is waited for; without, a missing
// (or unreadable) topic turns the join off with an error in the log
// rather than stall the ingest role on a produce that cannot succeed: the
// halves are then stored as they come, as before the join. Every instance
// shares the topic and its ACLs, so they all agree. An error means ctx
// ended.
func (a *Analyzer) callsTopicReady(ctx context.Context) (bool, error) {
	k := a.o.Kafka
	cl, err := kafka.NewClient(k)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	var on bool
	if err := a.awaitMetadata(ctx, "read the calls topic", func(ctx context.Context) (err error) {
		on, err = optionalTopic(ctx, cl, k, k.CallsTopic)
		return err
	}); err != nil {
		return false, err
	}
	if !on {
		a.log.Error("call join off: the calls topic does not exist or is not readable (create it, or set analyzer.call_join_wait: 0s); "+
			"the client and server observations of a call exported separately are stored and counted as two", "topic", k.CallsTopic)
	}
	return on, nil
}

// joinLoop is the join: calls topic → calljoin.Joiner → events topic. Its
// own consumer group; offsets are committed per partition up to the first
// record that still has a held observation, after the releases before it
// were acknowledged, so a crash or a rebalance makes the next owner read
// and hold them again (docs/analyzer.md, "Call join").
func (a *Analyzer) joinLoop(ctx context.Context) error {
	k := a.o.Kafka
	j := calljoin.New(calljoin.Config{Wait: *a.cfg.CallJoinWait, MaxHeld: a.cfg.CallJoinMaxHeld, MaxRemembered: a.cfg.CallJoinMaxRemembered})
	// The partition callbacks run only while the loop allows rebalances
	// (BlockRebalanceOnPoll), but on the client's goroutine: jmu orders
	// them with the loop.
	var jmu sync.Mutex
	next := map[int32]int64{}      // partition → the offset after the last record added
	committed := map[int32]int64{} // partition → last offset committed
	lose := func(m map[string][]int32) {
		jmu.Lock()
		defer jmu.Unlock()
		ps := m[k.CallsTopic]
		j.DropPartitions(ps)
		for _, p := range ps {
			delete(next, p)
			delete(committed, p)
		}
		a.m.joinHeld.Set(float64(j.Held()))
		a.roleAssigned(roleJoin, -len(ps))
		a.dropLag(m)
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.CallJoinGroup),
		kgo.ConsumeTopics(k.CallsTopic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Released observations go to the events topic, placed as the
		// collector places its records (kafka.ProducerOpts): the same key
		// must reach the same ingest partition as the agent's other events.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.roleAssigned(roleJoin, len(m[k.CallsTopic]))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { lose(m) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { lose(m) }),
	}
	opts = append(opts, a.roleOpts(roleJoin)...)
	cl, err := kafka.NewClient(k, opts...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance()
	a.log.Info("call join consuming", "topic", k.CallsTopic, "group", a.cfg.CallJoinGroup, "wait", *a.cfg.CallJoinWait)
	for ctx.Err() == nil {
		cl.AllowRebalance()
		jmu.Lock()
		wake := j.Next()
		jmu.Unlock()
		wait := time.Second
		if !wake.IsZero() {
			wait = min(wait, max(time.Until(wake), time.Millisecond))
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := cl.PollRecords(pctx, 4096)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		a.observeFetches(fetches)
		now := time.Now()
		jmu.Lock()
		var rel []calljoin.Release
		fetches.EachRecord(func(r *kgo.Record) {
			evs, err := event.Unmarshal(r.Value)
			if err != nil {
				// Skipped and committed past: the ingest role wrote it,
				// so this is a bug, not a sender's input.
				a.m.undecodable.WithLabelValues(roleJoin).Inc()
				a.log.Warn("call join: undecodable record skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
			}
			notice := isNotice(r)
			for i := range evs {
				rel = append(rel, j.Add(now, calljoin.Obs{Event: evs[i], Partition: r.Partition, Offset: r.Offset, Stored: notice})...)
			}
			next[r.Partition] = r.Offset + 1
		})
		rel = append(rel, j.Expire(now)...)
		a.m.joinHeld.Set(float64(j.Held()))
		a.m.joinRemembered.Set(float64(j.Remembered()))
		jmu.Unlock()
		if len(rel) > 0 {
			recs, err := releaseRecords(k.Topic, rel)
			if err != nil {
				return err
			}
			if err := a.retry(ctx, "produce joined calls to the events topic", func(ctx context.Context) error {
				return cl.ProduceSync(ctx, recs...).FirstErr()
			}); err != nil {
				// ctx ended: nothing past these records is committed; the
				// next owner reads and joins them again.
				break
			}
			for _, r := range rel {
				a.m.joinTotal.WithLabelValues(r.Result).Inc()
			}
		}
		jmu.Lock()
		offs := map[int32]kgo.EpochOffset{}
		for p, n := range next {
			if c := j.Committable(p, n); committed[p] != c {
				offs[p] = kgo.EpochOffset{Epoch: -1, Offset: c}
			}
		}
		jmu.Unlock()
		if len(offs) == 0 {
			continue
		}
		if h := a.o.BeforeJoinCommit; h != nil && h() != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		var cerr error
		cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{k.CallsTopic: offs},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				cerr = err
				if err == nil {
					for _, t := range resp.Topics {
						for _, p := range t.Partitions {
							if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
								cerr = err
							}
						}
					}
				}
			})
		cancel()
		if cerr != nil {
			a.m.commitErrors.Inc()
			a.log.Warn("call join: cannot commit offsets; their records are joined again", "err", cerr)
			continue
		}
		jmu.Lock()
		for p, o := range offs {
			if _, owned := next[p]; owned {
				committed[p] = o.Offset
			}
		}
		jmu.Unlock()
	}
	cl.AllowRebalance()
	return nil
}

func isNotice(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderCallNotice {
			return true
		}
	}
	return false
}

// releaseRecords encodes released observations for the events topic, one
// record per observation, keyed like the collector's (event.PartitionKey of
// the completed identity).
func releaseRecords(topic string, rel []calljoin.Release) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(rel))
	for i := range rel {
		e := &rel[i].Event
		v, err := event.Marshal([]event.Event{*e})
		if err != nil {
			return nil, err
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(e.PartitionKey()), Value: v})
	}
	return recs, nil
}
