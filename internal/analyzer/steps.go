package analyzer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
)

// stepsReader is the ingest role's view of the steps topic
// (mcpwatch.detect.steps.v1): every first step of a gated sequence that
// any ingest instance saw, learned into a detect.StepGate. It reads the
// whole topic from its start, without a group, and lets a flush wait until
// it has read everything produced before the flush asked (sync).
type stepsReader struct {
	topic string
	cl    *kgo.Client
	adm   *kadm.Client
	gate  *detect.StepGate
	pack  func() *detect.Pack
	bad   func(err error)

	mu   sync.Mutex
	next map[int32]int64 // per partition: the offset after the last read
	wake chan struct{}   // closed and replaced when next moves
}

// newStepsReader starts reading the steps topic; nil (and no error) when
// the topic does not exist, or may not be described, and create_topics is
// off: every later step is forwarded then, and no first step announced.
func newStepsReader(ctx context.Context, k kafka.Config, pack func() *detect.Pack, bad func(error)) (*stepsReader, error) {
	topic := k.WithDefaults().DetectStepsTopic
	cl, err := kafka.NewClient(k, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return nil, err
	}
	if ok, err := optionalTopic(ctx, cl, k, topic); !ok {
		// Not there (or not ours to read): no instance can gate, so none
		// needs to announce (err nil); or not in the metadata yet (err).
		cl.Close()
		return nil, err
	}
	adm := kadm.NewClient(cl)
	r := &stepsReader{topic: topic, cl: cl, adm: adm, gate: detect.NewStepGate(), pack: pack, bad: bad,
		next: map[int32]int64{}, wake: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

func (r *stepsReader) close() { r.cl.Close() }

func (r *stepsReader) run(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := r.cl.PollFetches(ctx)
		if fetches.IsClientClosed() {
			return
		}
		moved := map[int32]int64{}
		fetches.EachRecord(func(rec *kgo.Record) {
			n, err := detect.DecodeStepNotice(rec.Value)
			if err != nil {
				r.bad(err)
			} else {
				r.gate.Learn(r.pack(), n)
			}
			moved[rec.Partition] = rec.Offset + 1
		})
		if len(moved) == 0 {
			continue
		}
		r.mu.Lock()
		for p, o := range moved {
			r.next[p] = max(r.next[p], o)
		}
		close(r.wake)
		r.wake = make(chan struct{})
		r.mu.Unlock()
	}
}

// publish produces the first steps of ins and waits for their
// acknowledgement; the flush produces the inputs only after it. They are
// learned here at once as well (the batch's own later steps).
func (r *stepsReader) publish(ctx context.Context, ns []detect.StepNotice) error {
	recs := make([]*kgo.Record, 0, len(ns))
	for _, n := range ns {
		v, err := n.Encode()
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Key: detect.GroupKey(n.Tenant, n.Rule, n.Group), Value: v})
	}
	if err := r.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	pack := r.pack()
	for _, n := range ns {
		r.gate.Learn(pack, n)
	}
	return nil
}

// sync returns once every notice produced before it was called is
// learned: it lists the topic's end offsets, then waits until the reader
// has read up to them.
func (r *stepsReader) sync(ctx context.Context) error {
	ends, err := r.adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return err
	}
	starts, err := r.adm.ListStartOffsets(ctx, r.topic)
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, o.Err)
			return
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil && s.Offset >= o.Offset {
			return // empty
		}
		want[o.Partition] = o.Offset
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for {
		r.mu.Lock()
		done := true
		for p, o := range want {
			if r.next[p] < o {
				done = false
			}
		}
		wake := r.wake
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return fmt.Errorf("steps topic %s not read up to %v in 10s", r.topic, want)
		}
	}
}

// gateInputs is the flush's step between detection and producing the
// inputs: publish the batch's first steps, wait for every instance's
// earlier ones, drop the later steps outside every known window.
func (a *Analyzer) gateInputs(ctx context.Context, b *batch) error {
	r := a.steps
	if r == nil || b.gated || len(b.inputs) == 0 {
		b.gated = true
		return nil
	}
	pack := a.o.Detector.(InputDetector).Pack()
	if !b.noticed {
		if ns := detect.StepNotices(pack, b.inputs); len(ns) > 0 {
			if err := a.retry(ctx, "produce first steps", func(ctx context.Context) error { return r.publish(ctx, ns) }); err != nil {
				return err
			}
		}
		b.noticed = true
	}
	if !gatable(pack, b.inputs) {
		b.gated = true // nothing to filter: no barrier needed
		return nil
	}
	if err := a.retry(ctx, "read the steps topic", r.sync); err != nil {
		return err
	}
	var dropped int
	b.inputs, dropped = r.gate.Filter(pack, b.inputs)
	a.m.inputsGated.Add(float64(dropped))
	b.gated = true
	return nil
}

// gatable reports whether ins has a later step of a gated rule.
func gatable(pack *detect.Pack, ins []detect.Input) bool {
	for i := range ins {
		if ins[i].Conds&1 == 0 {
			if r := pack.Rule(ins[i].RuleID); r != nil && r.Gated() {
				return true
			}
		}
	}
	return false
}
