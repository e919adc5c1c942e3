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
	Pack() *detect.Pack
}

// Detection inputs travel as the events they are (OTLP logs, as on the
// events topic) with four extra attributes per log record. One record
// carries the inputs of one ingest batch bound for one partition of
// mcpwatch.detect.v1, in order: per-record work (franz-go, the broker, the
// consumer) dominated when every input was its own record. Its key is the
// first input's key, tenant/rule/group; every input in it maps to the same
// partition (kafka.PartitionOf).
const (
	AttrInputRule        = "mcpwatch.detect.rule"
	AttrInputRuleVersion = "mcpwatch.detect.rule_version"
	AttrInputGroup       = "mcpwatch.detect.group"
	AttrInputConds       = "mcpwatch.detect.conds"
)

// maxInputsPerRecord bounds a record (trimmed inputs are ≤ a few KiB).
const maxInputsPerRecord = 256

// inputRecords groups ins by their partition among n and encodes them.
func inputRecords(topic string, n int, pack *detect.Pack, ins []detect.Input) ([]*kgo.Record, error) {
	byPart := map[int32][]int{}
	var order []int32
	for i := range ins {
		p := kafka.PartitionOf(ins[i].Key(), n)
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], i)
	}
	var out []*kgo.Record
	evs := make([]event.Event, 0, maxInputsPerRecord)
	for _, p := range order {
		idx := byPart[p]
		for start := 0; start < len(idx); start += maxInputsPerRecord {
			evs = evs[:0]
			for _, i := range idx[start:min(start+maxInputsPerRecord, len(idx))] {
				in := &ins[i]
				ev := in.Trimmed(pack)
				ev.AttrKeys = []string{AttrInputRule, AttrInputRuleVersion, AttrInputGroup, AttrInputConds}
				ev.AttrValues = []string{in.RuleID, in.RuleVersion, in.Group, strconv.FormatUint(in.Conds, 16)}
				evs = append(evs, ev)
			}
			v, err := event.Marshal(evs)
			if err != nil {
				return nil, err
			}
			out = append(out, &kgo.Record{Topic: topic, Key: ins[idx[start]].Key(), Value: v})
		}
	}
	return out, nil
}

// inputDecoder is inputRecords' inverse. It keeps its event slice and
// interner from record to record: the detect role applies a record's
// inputs before it decodes the next (the engine keeps no pointer to them),
// so one slice of at most maxInputsPerRecord events serves every batch
// instead of a batch-sized one (tens of MiB) allocated and cleared anew.
type inputDecoder struct {
	dec         event.Decoder
	evs         []event.Event
	ins         []detect.Input
	undecodable func(r *kgo.Record, err error)
}

// decode returns the inputs of r, in order, valid until the next call; an
// undecodable record is reported and has none.
func (d *inputDecoder) decode(r *kgo.Record) []detect.Input {
	clear(d.evs) // drop the previous record's strings
	evs, err := d.dec.UnmarshalAppend(d.evs[:0], r.Value)
	d.evs = evs
	if err == nil {
		err = checkInputs(d.evs)
	}
	if err != nil {
		d.evs = d.evs[:0]
		d.undecodable(r, err)
	}
	d.ins = d.ins[:0]
	for i := range d.evs {
		ev := &d.evs[i]
		in := detect.Input{Event: ev, Tenant: ev.Tenant}
		for k, key := range ev.AttrKeys {
			switch key {
			case AttrInputRule:
				in.RuleID = ev.AttrValues[k]
			case AttrInputRuleVersion:
				in.RuleVersion = ev.AttrValues[k]
			case AttrInputGroup:
				in.Group = ev.AttrValues[k]
			case AttrInputConds:
				in.Conds, _ = strconv.ParseUint(ev.AttrValues[k], 16, 64)
			}
		}
		ev.AttrKeys, ev.AttrValues = nil, nil
		d.ins = append(d.ins, in)
	}
	return d.ins
}

// checkInputs reports an event that is not a detection input: no rule, or
// no conditions.
func checkInputs(evs []event.Event) error {
	for i := range evs {
		var rule, conds string
		for k, key := range evs[i].AttrKeys {
			switch key {
			case AttrInputRule:
				rule = evs[i].AttrValues[k]
			case AttrInputConds:
				conds = evs[i].AttrValues[k]
			}
		}
		if _, err := strconv.ParseUint(conds, 16, 64); err != nil || rule == "" {
			return fmt.Errorf("not a detection input (rule %q, conds %q)", rule, conds)
		}
	}
	return nil
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
			a.awaitMetadata(ctx, "read the detect topic's partitions", func(ctx context.Context) (err error) { //nolint:errcheck // only ctx ends it
				n, err = partitionCount(ctx, cl, k.DetectTopic)
				return err
			})
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
		// Shorter than the session: a member killed inside a transaction
		// leaves it open (its partitions unstable, read_committed readers
		// of the findings topic stopped at it) until the broker aborts it;
		// franz-go's 40 s default outlived a short session timeout by far.
		// At most the brokers' transaction.max.timeout.ms default (15 min).
		kgo.TransactionTimeout(min(a.cfg.SessionTimeout*9/10, 15*time.Minute)),
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
	// Control records (transaction markers) are kept so that a restore
	// sees the offset of a partition's last marker and stops there.
	restoreCl, err = kafka.NewClient(k, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return err
	}
	defer restoreCl.Close()
	var mismatch error
	if err := a.awaitMetadata(ctx, "read the detect topics' partitions", func(ctx context.Context) error {
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
	dec := &inputDecoder{undecodable: func(r *kgo.Record, err error) {
		a.m.undecodable.WithLabelValues(RoleDetect).Inc()
		a.log.Warn("detect: undecodable input skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
	}}
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
		committed, err := a.detectBatch(ctx, sess, recs, dec)
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

// detectBatch applies the inputs of recs and ends the transaction that
// carries their findings, changelog records and offsets.
func (a *Analyzer) detectBatch(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record, dec *inputDecoder) (bool, error) {
	st, k := a.o.DetectState, a.o.Kafka
	if err := sess.Begin(); err != nil {
		return false, fmt.Errorf("cannot begin transaction: %w", err)
	}
	var fs []event.Finding
	inputs := 0
	for _, r := range recs {
		ins := dec.decode(r)
		inputs += len(ins)
		fs = append(fs, st.Apply(ins)...)
	}
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
		a.m.detectInputs.Add(float64(inputs))
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
			// The client keeps control records, so every partition reaches
			// its end; three quiet seconds are a safety net.
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
			// A transaction marker takes an offset, usually the last one.
			if !r.Attrs.IsControl() {
				out = append(out, detect.StateRecord{Key: r.Key, Value: r.Value})
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}
