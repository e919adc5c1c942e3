package analyzer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/detect/findingsout"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
)

// GroupState is the detect role's state (a *detect.Engine): it applies
// detection inputs to the groups it owns and keeps them in a changelog.
type GroupState interface {
	Apply(ins []detect.Input) []event.Finding
	Changelog() ([]detect.StateRecord, error)
	Restore(recs []detect.StateRecord) (restored, skipped int)
	Retain(owns func(key []byte) bool)
	ResetState()
}

// InputDetector is a Detector that leaves the rules grouped wider than an
// agent to the detect role (detect.Engine with Options.Repartition).
type InputDetector interface {
	DetectSplit(ctx context.Context, events []event.Event) ([]event.Finding, []detect.Input, error)
}

// Detection input record headers (mcpwatch.detect.v1). The value is the
// event as on the events topic (an OTLP logs request of one log record).
const (
	HeaderRule        = "mcpwatch-rule"
	HeaderRuleVersion = "mcpwatch-rule-version"
	HeaderGroup       = "mcpwatch-group"
	HeaderConds       = "mcpwatch-conds"
)

// inputRecord encodes a detection input.
func inputRecord(topic string, in *detect.Input) (*kgo.Record, error) {
	v, err := event.Marshal([]event.Event{in.Event})
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Key: in.Key(), Value: v, Headers: []kgo.RecordHeader{
		{Key: HeaderRule, Value: []byte(in.RuleID)},
		{Key: HeaderRuleVersion, Value: []byte(in.RuleVersion)},
		{Key: HeaderGroup, Value: []byte(in.Group)},
		{Key: HeaderConds, Value: strconv.AppendUint(nil, in.Conds, 16)},
	}}, nil
}

// decodeInput is inputRecord's inverse.
func decodeInput(r *kgo.Record) (detect.Input, error) {
	var in detect.Input
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderRule:
			in.RuleID = string(h.Value)
		case HeaderRuleVersion:
			in.RuleVersion = string(h.Value)
		case HeaderGroup:
			in.Group = string(h.Value)
		case HeaderConds:
			c, err := strconv.ParseUint(string(h.Value), 16, 64)
			if err != nil {
				return in, fmt.Errorf("bad %s header: %w", HeaderConds, err)
			}
			in.Conds = c
		}
	}
	evs, err := event.Unmarshal(r.Value)
	if err != nil {
		return in, err
	}
	if len(evs) != 1 || in.RuleID == "" {
		return in, fmt.Errorf("not a detection input (%d events, rule %q)", len(evs), in.RuleID)
	}
	in.Event, in.Tenant = evs[0], evs[0].Tenant
	return in, nil
}

// detect is the detect role: it consumes mcpwatch.detect.v1 in a
// consumer group and owns the groups of its partitions. Each batch is one
// Kafka transaction: the findings, the changelog records of the changed
// groups (mcpwatch.detect.state.v1, same partition number as the input)
// and the input offsets commit together or not at all, so a kill -9 or a
// rebalance neither loses nor doubles a finding. On assignment the owner
// replays the changelog of its new partitions; after an aborted
// transaction it drops its state and replays all of them.
func (a *Analyzer) detect(ctx context.Context) error {
	st := a.o.DetectState
	k := a.o.Kafka
	var own ownership
	owns := func(key []byte) bool { return own.owns(key) }
	var restoreCl *kgo.Client // direct reads of the changelog
	restore := func(ctx context.Context, parts []int32) {
		if len(parts) == 0 {
			return
		}
		err := a.retry(ctx, "restore detect state", func(ctx context.Context) error {
			recs, err := readChangelog(ctx, restoreCl, k.DetectStateTopic, parts)
			if err != nil {
				return err
			}
			restored, skipped := st.Restore(recs)
			a.log.Info("detect: state restored", "partitions", parts, "records", len(recs), "groups", restored, "skipped", skipped)
			return nil
		})
		if err != nil {
			a.log.Warn("detect: state not restored", "err", err)
		}
	}
	onChange := func(ctx context.Context, cl *kgo.Client, add, remove []int32) {
		n := 0
		if len(add) > 0 {
			var err error
			for n == 0 && ctx.Err() == nil {
				if n, err = partitionCount(ctx, cl, k.DetectTopic); err != nil {
					a.log.Warn("detect: cannot read the topic's partitions; retrying", "err", err)
					time.Sleep(a.cfg.RetryInitial)
				}
			}
		}
		owned, _ := own.set(add, remove, n)
		a.roleAssigned(RoleDetect, len(add)-len(remove))
		st.Retain(owns)
		restore(ctx, add)
		a.log.Info("detect: partitions", "owned", owned)
	}
	id := a.cfg.InstanceID
	if id == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	parts := func(m map[string][]int32) []int32 { return m[k.DetectTopic] }
	opts := []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.DetectGroup),
		kgo.ConsumeTopics(k.DetectTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.TransactionalID("mcpwatch-detect-" + id),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(kafka.KeyPartitioner()),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			onChange(ctx, cl, parts(m), nil)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			onChange(ctx, cl, nil, parts(m))
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			onChange(ctx, cl, nil, parts(m))
		}),
	}
	opts = append(opts, a.roleOpts(RoleDetect)...)
	base, err := kafka.ClientOpts(k)
	if err != nil {
		return err
	}
	restoreCl, err = kafka.NewClient(k, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer restoreCl.Close()
	var mismatch error
	// Just-created topics take a moment to show in the brokers' metadata.
	if err := a.retry(ctx, "read the detect topics' partitions", func(ctx context.Context) error {
		mismatch = nil
		n, err := partitionCount(ctx, restoreCl, k.DetectTopic)
		if err != nil {
			return err
		}
		m, err := partitionCount(ctx, restoreCl, k.DetectStateTopic)
		if err != nil {
			return err
		}
		if n != m {
			mismatch = fmt.Errorf("cannot run the detect role: %s has %d partitions and its changelog %s has %d; they must be equal",
				k.DetectTopic, n, k.DetectStateTopic, m)
		}
		return nil
	}); err != nil {
		if ctx.Err() != nil {
			return nil // shut down while waiting
		}
		return err
	}
	if mismatch != nil {
		return mismatch
	}
	sess, err := kgo.NewGroupTransactSession(append(base, opts...)...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer sess.Close()
	a.log.Info("detect role consuming", "topic", k.DetectTopic, "group", a.cfg.DetectGroup)
	for ctx.Err() == nil {
		fetches := sess.PollRecords(ctx, a.cfg.BatchRows)
		if fetches.IsClientClosed() {
			break
		}
		a.fetchErrs(fetches)
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		ins := make([]detect.Input, 0, len(recs))
		for _, r := range recs {
			in, err := decodeInput(r)
			if err != nil {
				a.m.undecodable.WithLabelValues(RoleDetect).Inc()
				a.log.Warn("detect: undecodable input skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
				continue
			}
			ins = append(ins, in)
		}
		committed, err := a.detectBatch(ctx, sess, ins)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if !committed {
			// A rebalance (or a failed produce) aborted the transaction: the
			// inputs come again; the state must be as the changelog has it.
			a.m.detectAborts.Inc()
			own.mu.Lock()
			var owned []int32
			for p := range own.parts {
				owned = append(owned, p)
			}
			own.mu.Unlock()
			st.ResetState()
			restore(ctx, owned)
		}
	}
	return nil
}

// detectBatch applies ins and ends the transaction that carries its
// findings, changelog records and offsets.
func (a *Analyzer) detectBatch(ctx context.Context, sess *kgo.GroupTransactSession, ins []detect.Input) (bool, error) {
	st, k := a.o.DetectState, a.o.Kafka
	if err := sess.Begin(); err != nil {
		return false, fmt.Errorf("cannot begin transaction: %w", err)
	}
	fs := st.Apply(ins)
	changes, err := st.Changelog()
	if err != nil {
		a.log.Error("detect: changelog not written", "err", err)
	}
	var out []*kgo.Record
	for i := range fs {
		v, err := findingsout.Marshal(fs[i : i+1])
		if err != nil {
			return false, err
		}
		out = append(out, &kgo.Record{Topic: k.FindingsTopic, Key: FindingKey(fs[i].Tenant, fs[i].RuleID, fs[i].GroupKey), Value: v})
	}
	for _, c := range changes {
		out = append(out, &kgo.Record{Topic: k.DetectStateTopic, Key: c.Key, Value: c.Value})
	}
	var produceErr error
	for _, r := range sess.ProduceSync(ctx, out...) {
		if r.Err != nil && produceErr == nil {
			produceErr = r.Err
		}
	}
	try := kgo.TryCommit
	if produceErr != nil {
		a.log.Warn("detect: produce failed; aborting the batch", "err", produceErr)
		try = kgo.TryAbort
	}
	committed, err := sess.End(ctx, try)
	if err != nil {
		return false, fmt.Errorf("cannot end transaction: %w", err)
	}
	if committed {
		a.m.findingsOut.Add(float64(len(fs)))
		a.m.detectInputs.Add(float64(len(ins)))
	}
	return committed, nil
}

// readChangelog reads partitions of the changelog from their start to
// their last stable offset (read_committed).
func readChangelog(ctx context.Context, cl *kgo.Client, topic string, parts []int32) ([]detect.StateRecord, error) {
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("cannot list changelog offsets: %w", err)
	}
	want := map[int32]int64{}
	consume := map[int32]kgo.Offset{}
	for _, p := range parts {
		o, ok := ends.Lookup(topic, p)
		if !ok || o.Err != nil {
			return nil, fmt.Errorf("cannot list changelog offsets of partition %d: %v", p, o.Err)
		}
		if o.Offset > 0 {
			want[p] = o.Offset
			consume[p] = kgo.NewOffset().AtStart()
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume})
	defer cl.RemoveConsumePartitions(map[string][]int32{topic: parts})
	var out []detect.StateRecord
	idle := 0
	for len(want) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if fetches.NumRecords() == 0 {
			// Transaction markers take offsets too: the last record may stop
			// short of the end. Three quiet seconds mean nothing is left.
			if idle++; idle >= 3 {
				break
			}
			continue
		}
		idle = 0
		var errs []error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
		})
		if len(errs) > 0 {
			return nil, fmt.Errorf("cannot read changelog: %w", errors.Join(errs...))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			out = append(out, detect.StateRecord{Key: r.Key, Value: r.Value})
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}
