package analyzer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/detect/findingsout"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/playbook"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// IncidentOwner is the respond role's state (internal/incident.Manager): it
// groups findings into incidents and sets each finding's IncidentID in
// place. Reload makes it hold exactly the incidents whose key the given
// function accepts, as stored; the respond loop calls it whenever its
// findings partitions change.
type IncidentOwner interface {
	FindingSink
	Reload(ctx context.Context, owns func(tenant, rule, group string) bool) error
}

// RunOwner drives the playbook runs of the incidents a respond instance
// owns (*playbook.Runner): Reload makes it hold exactly the unfinished runs
// whose incident key owns accepts, as stored.
type RunOwner interface {
	Reload(ctx context.Context, owns func(tenant, rule, group string) bool) error
}

// FindingKey is the findings topic's record key, the incident key
// (findingsout.Publisher writes it).
func FindingKey(tenant, rule, group string) []byte {
	return []byte(tenant + "/" + rule + "/" + group)
}

// ownership is the set of partitions of one topic this instance owns.
type ownership struct {
	mu    sync.Mutex
	parts map[int32]bool
	n     int // the topic's partition count
}

func (o *ownership) set(add, remove []int32, n int) (owned []int32, count int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.parts == nil {
		o.parts = map[int32]bool{}
	}
	for _, p := range remove {
		delete(o.parts, p)
	}
	for _, p := range add {
		o.parts[p] = true
	}
	if n > 0 {
		o.n = n
	}
	for p := range o.parts {
		owned = append(owned, p)
	}
	slices.Sort(owned)
	return owned, o.n
}

// owns reports whether key's partition is owned.
func (o *ownership) owns(key []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.parts[kafka.PartitionOf(key, o.n)]
}

func (o *ownership) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.parts)
}

// optionalTopic reports whether a topic that one feature needs can be
// used (the steps topic: the gate; the calls topic: the call join). With
// create_topics the analyzer created it at start, and an error means it is
// not in the metadata yet (retry). Without, a topic that is missing or not
// ours to read turns the feature off: (false, nil). Every instance shares
// the topic and its ACLs, so they all agree.
func optionalTopic(ctx context.Context, cl *kgo.Client, k kafka.Config, topic string) (bool, error) {
	_, err := partitionCount(ctx, cl, topic)
	switch {
	case err == nil:
		return true, nil
	case !*k.WithDefaults().CreateTopics &&
		(errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.TopicAuthorizationFailed)):
		return false, nil
	}
	return false, err
}

// partitionCount asks the brokers how many partitions topic has.
func partitionCount(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	// A direct metadata request: kadm's answers come from the client's
	// metadata cache, which keeps "unknown topic" for MetadataMinAge (5 s)
	// after a topic was just created.
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("cannot read partitions of %s: %w", topic, err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return 0, fmt.Errorf("cannot read partitions of %s: %w", topic, err)
		}
		return len(rt.Partitions), nil
	}
	return 0, fmt.Errorf("cannot read partitions of %s: not in the metadata", topic)
}

// respond is the respond role: it consumes the findings topic, hands each
// batch to the incident owner (which stores incident versions and queues
// notifications), stores the findings with their incident ids — the only
// place findings are written — and then commits. It owns the incidents of
// the partitions it is assigned; on every change of assignment the owner
// reloads them from ClickHouse as their previous owner stored them
// (rebalances happen only between batches, after the commit).
func (a *Analyzer) respond(ctx context.Context) error {
	topic := a.o.Kafka.FindingsTopic
	var own ownership
	supp := detect.NewSuppressor()
	// stopErr is a permanent reload failure (a schema mismatch): the
	// role stops with it rather than own incidents it could not load.
	var stopErr atomic.Pointer[error]
	reload := func(ctx context.Context, cl *kgo.Client, add, remove []int32) {
		n := 0
		if len(add) > 0 {
			a.awaitMetadata(ctx, "read the findings topic's partitions", func(ctx context.Context) (err error) { //nolint:errcheck // only ctx ends it
				n, err = partitionCount(ctx, cl, topic)
				return err
			})
		}
		owned, _ := own.set(add, remove, n)
		a.roleAssigned(RoleRespond, len(add)-len(remove))
		owns := func(tenant, rule, group string) bool { return own.owns(FindingKey(tenant, rule, group)) }
		// The suppression windows of the keys it owns (a window's key
		// refines the incident key, so it lives on the same partition).
		err := a.retry(ctx, "reload suppression windows", func(ctx context.Context) error {
			stored, err := a.o.Store.SuppressedFindings(ctx, time.Now().Add(-suppressReload))
			if err != nil {
				return err
			}
			mine := stored[:0]
			for _, f := range stored {
				if owns(f.Tenant, f.RuleID, f.GroupKey) {
					mine = append(mine, f)
				}
			}
			supp.Reset(mine)
			return nil
		})
		if isPermanent(err) {
			stopErr.CompareAndSwap(nil, &err)
		}
		if err != nil {
			a.log.Warn("respond: suppression windows not reloaded", "err", err)
		}
		if a.o.Sink == nil {
			return
		}
		io, ok := a.o.Sink.(IncidentOwner)
		if !ok {
			return
		}
		err = a.retry(ctx, "reload incidents", func(ctx context.Context) error { return io.Reload(ctx, owns) })
		if isPermanent(err) {
			stopErr.CompareAndSwap(nil, &err)
		}
		if err != nil {
			a.log.Warn("respond: incidents not reloaded", "err", err)
		}
		// The runs of those incidents, after them (a run reads its incident).
		if a.o.Playbooks != nil {
			err := a.retry(ctx, "reload playbook runs", func(ctx context.Context) error { return a.o.Playbooks.Reload(ctx, owns) })
			if isPermanent(err) {
				stopErr.CompareAndSwap(nil, &err)
			}
			if err != nil {
				a.log.Warn("respond: playbook runs not reloaded", "err", err)
			}
		}
		a.log.Info("respond: findings partitions", "owned", owned)
	}
	parts := func(m map[string][]int32) []int32 { return m[topic] }
	opts := []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.RespondGroup),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// The detect role produces findings in transactions.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kafka.KeyPartitioner()), // forwarded incident commands
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			reload(ctx, cl, parts(m), nil)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			reload(ctx, cl, nil, parts(m))
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			reload(ctx, cl, nil, parts(m))
		}),
	}
	opts = append(opts, a.roleOpts("respond")...)
	cl, err := kafka.NewClient(a.o.Kafka, opts...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance()
	if a.o.Router != nil {
		a.o.Router.bind(own.owns, func(ctx context.Context, r *kgo.Record) error {
			r.Topic = topic
			return cl.ProduceSync(ctx, r).FirstErr()
		})
		defer a.o.Router.bind(nil, nil)
	}
	a.log.Info("respond role consuming", "topic", topic, "group", a.cfg.RespondGroup)
	for ctx.Err() == nil {
		cl.AllowRebalance()
		fetches := cl.PollRecords(ctx, a.cfg.BatchRows)
		if fetches.IsClientClosed() {
			break
		}
		if err := stopErr.Load(); err != nil { // nothing of this poll is committed
			return fmt.Errorf("respond role stopped: %w", *err)
		}
		a.fetchErrs(fetches)
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		var fs []event.Finding
		failed := false
		for _, r := range recs {
			cmd, isCmd, err := decodeCommand(r)
			if isCmd {
				// A person's change or decision, forwarded by another
				// instance's API: after the findings before it, in
				// partition order.
				if err == nil {
					if err = a.storeFindings(ctx, fs, supp); err != nil {
						if isPermanent(err) {
							return fmt.Errorf("respond role stopped, its findings are replayed on restart: %w", err)
						}
						failed = true
						break
					}
					fs = fs[:0]
					err = a.applyCommand(ctx, cmd)
				}
				if err != nil {
					if ctx.Err() != nil {
						failed = true
						break
					}
					a.m.undecodable.WithLabelValues("respond-command").Inc()
					a.log.Warn("respond: incident command not applied", "incident_id", cmd.IncidentID, "change", cmd.Kind,
						"run_id", cmd.RunID, "step", cmd.Step, "err", err)
				}
				continue
			}
			got, err := findingsout.Unmarshal(r.Value)
			if err != nil {
				// A record we cannot read never blocks its partition.
				a.m.undecodable.WithLabelValues("respond").Inc()
				a.log.Warn("respond: undecodable findings record skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
				continue
			}
			for i := range got {
				// Findings of a suppression window after its first are
				// counted on it, not stored (nor grouped, nor notified).
				if supp.Add(&got[i]) {
					fs = append(fs, got[i])
				} else {
					a.m.suppressed.Inc()
				}
			}
		}
		if failed {
			break
		}
		if err := a.storeFindings(ctx, fs, supp); err != nil {
			if isPermanent(err) { // stop with the error; nothing committed
				return fmt.Errorf("respond role stopped, its findings are replayed on restart: %w", err)
			}
			break // ctx ended; nothing committed, the batch is replayed
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := cl.CommitRecords(cctx, recs...); err != nil {
			a.m.commitErrors.Inc()
			a.log.Warn("respond: cannot commit offsets; the batch will be replayed", "err", err)
		}
		cancel()
	}
	return nil
}

// suppressReload is how far back (by their last store) the respond role
// reloads suppression windows: twice the longest window a rule may set.
const suppressReload = 2 * detect.MaxSuppressWindow

// storeFindings hands fs to the incident owner, then stores them with their
// incident ids, and the suppression windows supp opened or counted on,
// retrying until both succeed or ctx ends. Replays are harmless: the owner
// ignores findings it has counted, findings are stored by their
// deterministic id, and a window's count moves only past its watermark.
func (a *Analyzer) storeFindings(ctx context.Context, fs []event.Finding, supp *detect.Suppressor) error {
	if a.o.Sink != nil && len(fs) > 0 {
		err := a.retry(ctx, "group findings into incidents", func(ctx context.Context) error {
			err := a.o.Sink.HandleFindings(ctx, fs)
			if err != nil {
				a.m.hookErrors.WithLabelValues("sink").Inc()
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	// A window's finding is stored as the window now stands (its latest
	// count), with the incident id it was just given.
	for i := range fs {
		supp.SetIncident(&fs[i])
	}
	windows := supp.Flush()
	if len(fs) == 0 && len(windows) == 0 {
		return nil
	}
	// The observations of one call give one finding id (detect): store it
	// once per batch.
	seen := make(map[string]bool, len(fs))
	uniq := fs[:0:0]
	for _, w := range windows {
		seen[w.FindingID] = true
		uniq = append(uniq, w)
	}
	for _, f := range fs {
		if f.SuppressKey != "" && f.SuppressWindow > 0 {
			continue // stored as its window
		}
		if !seen[f.FindingID] {
			seen[f.FindingID] = true
			uniq = append(uniq, f)
		}
	}
	fs = uniq
	if err := a.insert(ctx, "findings", len(fs), func(ctx context.Context) error { return a.o.Store.InsertFindings(ctx, fs) }); err != nil {
		return err
	}
	a.m.findingsIn.Add(float64(len(fs)))
	return nil
}

// applyCommand makes a forwarded change to an incident this instance owns,
// or a decision on one of its playbook runs, retrying store failures; a
// change that is not allowed (any more) is reported and dropped.
func (a *Analyzer) applyCommand(ctx context.Context, c command) error {
	if c.Kind == cmdApprove || c.Kind == cmdDeny {
		return a.applyDecision(ctx, c)
	}
	id, kind, u := c.IncidentID, incident.ChangeKind(c.Kind), c.Update
	ap, ok := a.o.Sink.(interface {
		Apply(ctx context.Context, id string, kind incident.ChangeKind, u incident.Update) (incident.Incident, error)
	})
	if !ok {
		return errors.New("no incident owner in this process")
	}
	return a.retryUnlessFinal(ctx, "apply incident change", func(ctx context.Context) error {
		_, err := ap.Apply(ctx, id, kind, u)
		return err
	}, incident.ErrIllegalTransition, incident.ErrInvalid, incident.ErrNotFound)
}

// retryUnlessFinal retries fn (a store failure passes) until it succeeds,
// ctx ends, or it fails with one of final (not allowed, not found: retrying
// cannot help), which it returns.
func (a *Analyzer) retryUnlessFinal(ctx context.Context, what string, fn func(context.Context) error, final ...error) error {
	var finalErr error
	p := a.policy(what)
	p.permanent = func(err error) bool {
		for _, f := range final {
			if errors.Is(err, f) {
				finalErr = err
				return true
			}
		}
		return store.IsPermanent(err)
	}
	err := a.retryWith(ctx, what, p, fn)
	if finalErr != nil {
		return finalErr
	}
	return err
}

// applyDecision approves or denies a step of a run this instance drives.
func (a *Analyzer) applyDecision(ctx context.Context, c command) error {
	if a.o.Router == nil || a.o.Router.Runner == nil {
		return errors.New("no playbook runner in this process")
	}
	return a.retryUnlessFinal(ctx, "apply playbook decision", func(ctx context.Context) error {
		_, err := a.o.Router.Runner.Decide(ctx, c.IncidentID, c.RunID, c.Step, c.Update.Actor, c.Update.Note, c.Kind == cmdApprove)
		return err
	}, playbook.ErrNotFound, playbook.ErrNotWaiting)
}

// fetchErrs counts and logs fetch errors other than the poll's own end.
func (a *Analyzer) fetchErrs(fetches kgo.Fetches) {
	fetches.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		a.m.fetchErrors.Inc()
		a.log.Warn("kafka fetch error", "topic", t, "partition", p, "err", err)
	})
}
