package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// referenceFindings runs one in-process engine over the stream, wave by
// wave, as the single analyzer of old did: the finding ids every run must
// reproduce.
func referenceFindings(t *testing.T, packDir string, s soStream) map[string]event.Finding {
	t.Helper()
	pack, err := detect.LoadDir(packDir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := detect.New(pack, detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]event.Finding{}
	for _, w := range s.waves {
		fs, err := eng.Detect(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			out[f.FindingID] = f
		}
	}
	return out
}

// checkLabels fails unless findings hold exactly the stream's labelled
// detections (incident key → number of findings).
func checkLabels(t *testing.T, what string, s soStream, keys map[string]soKey) {
	t.Helper()
	got := map[soKey]int{}
	for _, k := range keys {
		got[k]++
	}
	for k, n := range s.expect {
		if got[k] != n {
			t.Errorf("%s: %s has %d findings, the stream's label expects %d", what, k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := s.expect[k]; !ok {
			t.Errorf("%s: %d unlabelled finding(s) of %s", what, n, k)
		}
	}
}

// TestScaleOutStreamLabels checks the stream's labels against one engine
// (no Kafka): every expected detection, nothing else.
func TestScaleOutStreamLabels(t *testing.T) {
	s := scaleOutStream(5)
	ref := referenceFindings(t, writeScaleOutPack(t), s)
	keys := map[string]soKey{}
	for id, f := range ref {
		keys[id] = soKey{f.Tenant, f.RuleID, f.GroupKey}
	}
	checkLabels(t, "one engine", s, keys)
}

// soBed is what the scenarios share: the binary, the broker, the pack, the
// stream and what one engine finds in it.
type soBed struct {
	bin, pack string
	kafka     *testbed.Kafka
	stream    soStream
	records   [][]*kgo.Record // per wave
	reference map[string]event.Finding
}

// soRun is one scenario's run: fresh topics, groups, database, data dirs
// and webhook receiver.
type soRun struct {
	bed   *soBed
	t     *testing.T
	name  string
	dir   string
	kc    kafka.Config
	group string
	ch    *testbed.CH
	st    *store.Store
	adm   *kadm.Client
	hook  *soHook
	procs map[string]*testbed.Process
}

// soHook is the webhook receiver: it counts deliveries per Idempotency-Key.
type soHook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]int
	raw  int
	bad  []string
}

func newSoHook(t *testing.T) *soHook {
	h := &soHook{keys: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p notify.WebhookPayload
		key := r.Header.Get(notify.HeaderIdempotencyKey)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.raw++
		if err := json.Unmarshal(body, &p); err != nil || key == "" || p.ID != key {
			h.bad = append(h.bad, fmt.Sprintf("key %q id %q err %v", key, p.ID, err))
		}
		h.keys[key]++
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// snapshot returns the distinct keys delivered and the raw duplicates.
func (h *soHook) snapshot() (map[string]bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make(map[string]bool, len(h.keys))
	for k := range h.keys {
		keys[k] = true
	}
	return keys, h.raw - len(h.keys)
}

func (b *soBed) newRun(t *testing.T, name string) *soRun {
	t.Helper()
	id := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	r := &soRun{bed: b, t: t, name: name, dir: t.TempDir(), group: "g-" + id, procs: map[string]*testbed.Process{}}
	r.kc = kafka.Config{Brokers: b.kafka.Brokers, Partitions: 6, Topic: "ev-" + id, FindingsTopic: "fi-" + id,
		DetectTopic: "de-" + id, DetectStateTopic: "ds-" + id, DeadLetterTopic: "dl-" + id}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := b.kafka.Client(t)
	if err := kafka.EnsureTopics(ctx, cl, r.kc.WithDefaults(), r.kc.Topic, r.kc.FindingsTopic, r.kc.DetectTopic, r.kc.DeadLetterTopic); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureCompactedTopics(ctx, cl, r.kc.WithDefaults(), r.kc.DetectStateTopic); err != nil {
		t.Fatal(err)
	}
	r.adm = kadm.NewClient(cl)
	r.ch = testbed.ClickHouse(t)
	r.st = openTestStore(t, r.ch)
	// Migrated once here: instances started together would race.
	if _, err := r.st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r.hook = newSoHook(t)
	return r
}

// start runs `analyzer run` (all roles) as instance name.
func (r *soRun) start(name string) {
	t := r.t
	t.Helper()
	data := filepath.Join(r.dir, name)
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(data, "analyzer.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
kafka:
  brokers: [%s]
  topic: %s
  findings_topic: %s
  detect_topic: %s
  detect_state_topic: %s
  dead_letter_topic: %s
  partitions: 6
clickhouse:
  addr: [%s]
  database: %s
analyzer:
  group: %s
  instance_id: %s
  session_timeout: 6s
  lag_interval: 1s
  batch_rows: 300
  batch_interval: 100ms
  retry_initial: 100ms
  retry_max: 1s
  shutdown_timeout: 10s
  admin_addr: "-"
  retention: {disabled: true}
migrate_on_start: false
log: {level: info, format: text}
rollup: {disabled: true}
detect: {rules_dir: %s}
response:
  data_dir: %s
  notify:
    initial_backoff: 100ms
    max_backoff: 1s
    receivers: [{name: hook, type: webhook, url: "%s"}]
    routes: [{name: all, receivers: [hook]}]
  api_tokens: [{name: test, role: viewer, env: MCPWATCH_SCALEOUT_TOKEN}]
`, r.kc.Brokers[0], r.kc.Topic, r.kc.FindingsTopic, r.kc.DetectTopic, r.kc.DetectStateTopic, r.kc.DeadLetterTopic,
		r.ch.Addr, r.ch.Database, r.group, name, r.bed.pack, data, r.hook.srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bed.bin, "run", "-config", cfg)
	cmd.Env = append(os.Environ(), "MCPWATCH_SCALEOUT_TOKEN=scaleout-test-token-0123456789")
	if _, restarted := r.procs[name]; restarted {
		// Keep the first run's log: it is the one that shows the kill.
		_ = os.Rename(filepath.Join(r.dir, name+".log"), filepath.Join(r.dir, name+".before-restart.log"))
	}
	p, err := testbed.StartProcess(cmd, filepath.Join(r.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(15 * time.Second) })
	r.procs[name] = p
}

func (r *soRun) logTail(name string) string {
	return testbed.Tail(filepath.Join(r.dir, name+".log"), 4000)
}

// produce sends wave w to the events topic, keyed as the collector keys
// events (tenant/agent).
func (r *soRun) produce(w int) {
	t := r.t
	t.Helper()
	cl, err := kafka.NewClient(r.kc, kafka.ProducerOpts(r.kc.Topic, r.kc.WithDefaults().Producer)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(r.bed.records[w]))
	for i, rec := range r.bed.records[w] {
		c := *rec
		c.Topic = r.kc.Topic
		recs[i] = &c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// caughtUp reports whether group has committed every record of topic.
func (r *soRun) caughtUp(group, topic string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := r.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return false, err.Error()
	}
	offs, err := r.adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, err.Error()
	}
	var behind []string
	ends.Each(func(e kadm.ListedOffset) {
		o, _ := offs.Lookup(topic, e.Partition)
		if o.At < e.Offset {
			behind = append(behind, fmt.Sprintf("p%d %d/%d", e.Partition, o.At, e.Offset))
		}
	})
	return len(behind) == 0, strings.Join(behind, " ")
}

// owners waits until every role's group has exactly the given instances
// as members, each assigned at least one partition: the instances share
// the work.
func (r *soRun) owners(instances ...string) {
	r.t.Helper()
	groups := map[string]string{r.group: "ingest", r.group + "-detect": "detect", r.group + "-respond": "respond"}
	r.wait(fmt.Sprint("partitions shared by ", instances), time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ds, err := r.adm.DescribeGroups(ctx, slices.Collect(maps.Keys(groups))...)
		if err != nil {
			return false, err.Error()
		}
		var problems []string
		for group, role := range groups {
			parts := map[string]int{}
			for _, m := range ds[group].Members {
				if c, ok := m.Assigned.AsConsumer(); ok && m.InstanceID != nil {
					for _, tp := range c.Topics {
						parts[strings.TrimSuffix(*m.InstanceID, "-"+role)] += len(tp.Partitions)
					}
				}
			}
			for _, in := range instances {
				if parts[in] == 0 {
					problems = append(problems, fmt.Sprintf("%s owns no %s partition", in, role))
				}
			}
			if len(parts) != len(instances) {
				problems = append(problems, fmt.Sprintf("%s members %v", role, parts))
			}
		}
		return len(problems) == 0, strings.Join(problems, "; ")
	})
}

// committedEvents sums the ingest group's committed offsets.
func (r *soRun) committedEvents() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := r.adm.FetchOffsets(ctx, r.group)
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == r.kc.Topic && o.At > 0 {
			n += o.At
		}
	})
	return n
}

// barrier waits until the ingest role committed every event produced and
// the detect role applied (committed) every detection input derived from
// them, so the next wave's inputs follow this wave's on every partition.
func (r *soRun) barrier(what string) {
	r.t.Helper()
	start := time.Now()
	r.wait(what+": events ingested", 90*time.Second, func() (bool, string) { return r.caughtUp(r.group, r.kc.Topic) })
	ingested := time.Since(start)
	r.wait(what+": detection inputs applied", 90*time.Second, func() (bool, string) {
		return r.caughtUp(r.group+"-detect", r.kc.DetectTopic)
	})
	r.t.Logf("%s: %s ingested after %s, its detection inputs applied after %s", r.name, what,
		ingested.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
}

func (r *soRun) wait(what string, timeout time.Duration, cond func() (bool, string)) {
	r.t.Helper()
	if !r.waitUntil(what, timeout, cond) {
		r.t.FailNow()
	}
}

// waitUntil polls cond until it holds, or reports (Errorf, with the
// instances' logs) that it did not within timeout. An instance that exits
// fails the test at once.
func (r *soRun) waitUntil(what string, timeout time.Duration, cond func() (bool, string)) bool {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return true
		}
		last = s
		for name, p := range r.procs {
			if p.Exited() {
				r.t.Fatalf("%s: instance %s exited (%v) while waiting for %s\n%s", r.name, name, p.Err(), what, r.logTail(name))
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var logs strings.Builder
	for name := range r.procs {
		fmt.Fprintf(&logs, "\n--- %s ---\n%s", name, r.logTail(name))
	}
	r.t.Errorf("%s: timed out waiting for %s (last: %s)%s", r.name, what, last, logs.String())
	return false
}

// soResult is what a run left behind.
type soResult struct {
	findings  map[string]soKey  // finding id → incident key
	incidents map[string]soKey  // incident id → key
	counts    map[string]uint32 // incident id → finding_count of its latest version
	perInc    map[string]int    // incident id → distinct findings stored with it
	delivered map[string]bool   // Idempotency-Keys received
	dups      int               // raw deliveries beyond one per key
	rawRows   uint64            // findings rows, replays included
}

// findingIDs reads the distinct finding ids stored in ClickHouse.
func (r *soRun) findingIDs() (map[string]bool, error) {
	rows, err := r.st.Conn().Query(context.Background(), "SELECT DISTINCT finding_id FROM "+r.ch.Database+".findings")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// finish waits until every finding one engine finds is stored and every
// incident's opening was delivered, then stops the instances (SIGTERM) and
// reads the results.
func (r *soRun) finish() soResult {
	t := r.t
	t.Helper()
	// On a timeout, carry on: check then says what is missing.
	start := time.Now()
	stored := r.waitUntil("findings stored", 90*time.Second, func() (bool, string) {
		ids, err := r.findingIDs()
		if err != nil {
			return false, err.Error()
		}
		missing := 0
		for id := range r.bed.reference {
			if !ids[id] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d stored, %d of %d expected missing", len(ids), missing, len(r.bed.reference))
	})
	if stored {
		t.Logf("%s: findings stored %s after the last wave", r.name, time.Since(start).Round(100*time.Millisecond))
		r.waitUntil("incident openings delivered", time.Minute, func() (bool, string) {
			res := r.read()
			missing := 0
			for k := range openingKeys(res) {
				if !res.delivered[k] {
					missing++
				}
			}
			return missing == 0 && len(res.incidents) > 0, fmt.Sprintf("%d of %d openings not delivered", missing, len(res.incidents))
		})
	}
	// Late duplicates (a replay after a rebalance) would arrive now.
	time.Sleep(2 * time.Second)
	for _, p := range r.procs {
		p.Stop(15 * time.Second)
	}
	return r.read()
}

// openingKeys are the Idempotency-Keys of the "opened" notification of
// every incident (notify's message ids are deterministic).
func openingKeys(res soResult) map[string]bool {
	out := map[string]bool{}
	for id := range res.incidents {
		out[notify.MessageID("hook", id, "opened", "trigger")] = true
	}
	return out
}

func (r *soRun) read() soResult {
	t := r.t
	t.Helper()
	ctx := context.Background()
	db := r.ch.Database
	res := soResult{findings: map[string]soKey{}, incidents: map[string]soKey{}, counts: map[string]uint32{}, perInc: map[string]int{}}
	rows, err := r.st.Conn().Query(ctx, "SELECT finding_id, tenant, rule_id, group_key, groupUniqArray(incident_id) FROM "+db+
		".findings GROUP BY finding_id, tenant, rule_id, group_key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, tenant, rule, group string
		var incs []string
		if err := rows.Scan(&id, &tenant, &rule, &group, &incs); err != nil {
			t.Fatal(err)
		}
		if _, dup := res.findings[id]; dup || len(incs) != 1 || incs[0] == "" {
			t.Errorf("%s: finding %s (%s/%s/%s) stored with incident ids %q (want exactly one, non-empty)", r.name, id, tenant, rule, group, incs)
		}
		res.findings[id] = soKey{tenant, rule, group}
		for _, inc := range incs {
			res.perInc[inc]++
		}
	}
	rows.Close()
	if err := r.st.Conn().QueryRow(ctx, "SELECT count() FROM "+db+".findings").Scan(&res.rawRows); err != nil {
		t.Fatal(err)
	}
	rows, err = r.st.Conn().Query(ctx, "SELECT incident_id, tenant, rule_id, group_key, argMax(finding_count, version) FROM "+db+
		".incidents GROUP BY incident_id, tenant, rule_id, group_key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, tenant, rule, group string
		var n uint32
		if err := rows.Scan(&id, &tenant, &rule, &group, &n); err != nil {
			t.Fatal(err)
		}
		if _, dup := res.incidents[id]; dup {
			t.Errorf("%s: incident %s stored under two keys", r.name, id)
		}
		res.incidents[id] = soKey{tenant, rule, group}
		res.counts[id] = n
	}
	rows.Close()
	res.delivered, res.dups = r.hook.snapshot()
	return res
}

// check asserts what every run must show, and that it equals want (the
// single-instance run) when given.
func (r *soRun) check(res soResult, want *soResult) {
	t := r.t
	t.Helper()
	// Every finding one engine finds, and nothing else.
	got := slices.Sorted(maps.Keys(res.findings))
	ref := slices.Sorted(maps.Keys(r.bed.reference))
	if !slices.Equal(got, ref) {
		t.Errorf("%s: finding ids differ from one engine's:\n only stored: %v\n only one engine: %v", r.name, minus(got, ref), minus(ref, got))
	}
	checkLabels(t, r.name, r.bed.stream, res.findings)
	// Exactly one incident per key, counting exactly its findings.
	byKey := map[soKey][]string{}
	for id, k := range res.incidents {
		byKey[k] = append(byKey[k], id)
	}
	findingsPerKey := map[soKey]int{}
	for _, k := range res.findings {
		findingsPerKey[k]++
	}
	for k, n := range findingsPerKey {
		ids := byKey[k]
		if len(ids) != 1 {
			t.Errorf("%s: %s has %d incidents %v, want 1", r.name, k, len(ids), ids)
			continue
		}
		if c := res.counts[ids[0]]; int(c) != n || res.perInc[ids[0]] != n {
			t.Errorf("%s: incident %s of %s: finding_count %d, %d findings stored with it, want %d", r.name, ids[0], k, c, res.perInc[ids[0]], n)
		}
	}
	for k, ids := range byKey {
		if findingsPerKey[k] == 0 {
			t.Errorf("%s: incidents %v of %s have no finding", r.name, ids, k)
		}
	}
	// Every incident change delivered: here, each incident's opening (the
	// stream has no escalation, resolution or reopening, and "updated"
	// waits for the route's 4h repeat interval).
	opened := slices.Sorted(maps.Keys(openingKeys(res)))
	delivered := slices.Sorted(maps.Keys(res.delivered))
	if !slices.Equal(delivered, opened) {
		t.Errorf("%s: delivered keys differ from one opening per incident:\n only delivered: %v\n not delivered: %v", r.name, minus(delivered, opened), minus(opened, delivered))
	}
	r.hook.mu.Lock()
	if len(r.hook.bad) > 0 {
		t.Errorf("%s: malformed deliveries: %v", r.name, r.hook.bad)
	}
	r.hook.mu.Unlock()
	if want != nil {
		if a, b := got, slices.Sorted(maps.Keys(want.findings)); !slices.Equal(a, b) {
			t.Errorf("%s: finding ids differ from the single instance's:\n only here: %v\n only single: %v", r.name, minus(a, b), minus(b, a))
		}
		if a, b := slices.Sorted(maps.Keys(res.incidents)), slices.Sorted(maps.Keys(want.incidents)); !slices.Equal(a, b) {
			t.Errorf("%s: incident ids differ from the single instance's:\n only here: %v\n only single: %v", r.name, minus(a, b), minus(b, a))
		}
		if a, b := slices.Sorted(maps.Keys(res.delivered)), slices.Sorted(maps.Keys(want.delivered)); !slices.Equal(a, b) {
			t.Errorf("%s: delivered keys differ from the single instance's:\n only here: %v\n only single: %v", r.name, minus(a, b), minus(b, a))
		}
	}
	t.Logf("%s: %d findings (%d rows), %d incidents, %d deliveries (%d distinct keys, %d raw duplicates, dropped by the receiver's Idempotency-Key dedupe)",
		r.name, len(res.findings), res.rawRows, len(res.incidents), len(res.delivered)+res.dups, len(res.delivered), res.dups)
}

// minus returns the elements of a (sorted) not in b (sorted).
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

// TestScaleOut runs `analyzer run` (ingest, detect and respond roles) as
// real processes on Apache Kafka (6 partitions per topic) and ClickHouse
// over a labelled stream with cross-agent cases of every stateful rule
// kind (scaleout_stream_test.go), and checks that one instance, three
// instances with one killed (SIGKILL) mid-stream, the same with the killed
// one restarted at once under its instance id, and instances scaled
// 1→3→2 during the stream give the same findings, one incident per key
// with the right finding_count, and every incident change delivered to a
// webhook (once after deduplicating by Idempotency-Key; raw duplicates
// are logged).
func TestScaleOut(t *testing.T) {
	bed := &soBed{bin: buildAnalyzer(t), pack: writeScaleOutPack(t), stream: scaleOutStream(150)}
	bed.reference = referenceFindings(t, bed.pack, bed.stream)
	if len(bed.reference) == 0 {
		t.Fatal("one engine finds nothing in the stream")
	}
	for _, w := range bed.stream.waves {
		var recs []*kgo.Record
		for i := range w {
			v, err := event.Marshal(w[i : i+1])
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Key: []byte(w[i].PartitionKey()), Value: v})
		}
		bed.records = append(bed.records, recs)
	}
	bed.kafka = testbed.ApacheKafka(t)
	t.Logf("stream: %d events in %d waves; one engine: %d findings", len(bed.stream.events()), len(bed.stream.waves), len(bed.reference))

	var single soResult
	ok := t.Run("single", func(t *testing.T) {
		r := bed.newRun(t, "single")
		r.start("a")
		for w := range bed.stream.waves {
			r.produce(w)
			r.barrier(fmt.Sprint("wave ", w))
		}
		single = r.finish()
		r.check(single, nil)
	})
	if !ok {
		t.FailNow()
	}
	// killB runs three instances and SIGKILLs b in the middle of wave 2;
	// restart starts it again at once with the same instance id and data
	// dir: a static group member back before its session times out takes
	// its partitions again without a rebalance and fences its own open
	// detect transaction.
	killB := func(t *testing.T, name string, restart bool) {
		r := bed.newRun(t, name)
		for _, n := range []string{"a", "b", "c"} {
			r.start(n)
		}
		for w := range bed.stream.waves {
			if w == 2 {
				r.owners("a", "b", "c")
			}
			before := r.committedEvents()
			r.produce(w)
			if w == 2 {
				// Kill b while the wave is being worked on: once a third
				// of it was committed (its cases lie in its middle), if
				// that is seen in time.
				deadline := time.Now().Add(10 * time.Second)
				for r.committedEvents() < before+int64(len(bed.records[w])/3) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				t.Logf("SIGKILL b: %d of %d events of wave 2 committed (restart: %v)", r.committedEvents()-before, len(bed.records[w]), restart)
				r.procs["b"].Kill()
				if restart {
					r.start("b")
				} else {
					delete(r.procs, "b")
				}
			}
			r.barrier(fmt.Sprint("wave ", w))
		}
		if restart {
			r.owners("a", "b", "c")
		}
		r.check(r.finish(), &single)
	}
	t.Run("kill9", func(t *testing.T) { killB(t, "kill9", false) })
	t.Run("kill9-restart-same-id", func(t *testing.T) { killB(t, "restart", true) })
	t.Run("scale-1-3-2", func(t *testing.T) {
		r := bed.newRun(t, "scale")
		r.start("a")
		r.produce(0)
		r.barrier("wave 0")
		r.start("b")
		r.start("c")
		r.produce(1) // while b and c join
		r.barrier("wave 1")
		r.owners("a", "b", "c")
		r.produce(2)
		// a, the first instance, leaves mid-wave (SIGTERM: a clean
		// shutdown finishes its batch and commits).
		r.procs["a"].Stop(15 * time.Second)
		delete(r.procs, "a")
		r.barrier("wave 2")
		r.owners("b", "c")
		r.produce(3)
		r.barrier("wave 3")
		r.check(r.finish(), &single)
	})
}
