package analyzer

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// changeLog records the incident changes of one rule (what notifiers see).
type changeLog struct {
	mu    sync.Mutex
	rule  string
	kinds []incident.ChangeKind
}

func (l *changeLog) IncidentChanged(_ context.Context, c incident.Change) {
	if c.Incident.RuleID != l.rule {
		return
	}
	l.mu.Lock()
	l.kinds = append(l.kinds, c.Kind)
	l.mu.Unlock()
}

func (l *changeLog) get() []incident.ChangeKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]incident.ChangeKind(nil), l.kinds...)
}

// packWithLists loads the shipped pack with one lists file replaced, as a
// rules_dir that edits it would.
func packWithLists(t *testing.T, name, content string) *detect.Pack {
	t.Helper()
	if _, err := fs.Stat(detections.FS, name); err != nil {
		t.Fatalf("the pack has no %s to replace", name)
	}
	fsys, err := detections.WithFiles(map[string][]byte{name: []byte(content)})
	if err != nil {
		t.Fatal(err)
	}
	pack, err := detect.Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return pack
}

// TestSuppressionOneFindingPerWindow: a chatty agent calls one tool that is
// not allowlisted 10,000 times within an hour, then 5 times in the next
// hour, through the real pack, Kafka and ClickHouse, with the analyzer
// restarted halfway (the windows reload from ClickHouse). Stored: one
// finding per window, counting the others exactly (9,999 and 4), with the
// first and last events; the incident sees one change per window. Then
// every event and every finding is replayed (both consumer groups deleted:
// a crash before any commit) and the counts stay exact.
func TestSuppressionOneFindingPerWindow(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: "sup", DeadLetterTopic: "sup.dlq", FindingsTopic: "sup.findings"}
	ensureTopics(t, kc)
	// A deployment that opts in to the static allowlist (the shipped list
	// is empty, the rule off): its rules_dir's lists/allowlist.yaml lists
	// some tools, not warehouse/run_query.
	pack := packWithLists(t, "lists/allowlist.yaml", "allowlisted_tools: [warehouse/list_tables]\n")
	const rule = "mcp-tool-not-allowlisted"
	// A recent, hour-aligned window (the respond role reloads windows
	// stored within the last two days).
	w0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	call := func(i int, at time.Time) event.Event {
		return event.Event{EventID: fmt.Sprintf("chatty-%05d", i), Tenant: "acme", Kind: event.KindMessage, Time: at,
			Source: event.SourceSpan, Observer: event.ObserverServer, Method: "tools/call", SessionKey: "s1",
			AgentID: "etl-bot", ServerName: "warehouse", ToolName: "run_query", Arguments: `{"sql":"SELECT 1"}`,
			Outcome: event.OutcomeOK}
	}
	var evs []event.Event
	for i := 0; i < 10000; i++ {
		evs = append(evs, call(i, w0.Add(time.Duration(i)*300*time.Millisecond)))
	}
	for i := 0; i < 5; i++ {
		evs = append(evs, call(10000+i, w0.Add(time.Hour+time.Duration(i)*time.Minute)))
	}

	changes := &changeLog{rule: rule}
	start := func() func() {
		eng, err := detect.New(pack, detect.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := incident.NewCHStore(st.Conn(), st.Database())
		if err != nil {
			t.Fatal(err)
		}
		mgr, err := incident.NewManager(context.Background(), incident.Config{Store: cs})
		if err != nil {
			t.Fatal(err)
		}
		mgr.Subscribe(changes)
		_, stop := running(t, Options{Kafka: kc, Store: st, Detector: eng, Sink: mgr,
			Config: Config{BatchRows: 700, BatchInterval: 100 * time.Millisecond}})
		return stop
	}
	type row struct {
		id, first, last string
		count           uint32
		ts              time.Time
		incident        string
	}
	stored := func() []row {
		rows, err := st.Conn().Query(context.Background(), "SELECT finding_id, event_ids[1], last_event_id, suppressed_count, ts, incident_id FROM "+
			ch.Database+".findings FINAL WHERE rule_id = ? ORDER BY ts", rule)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.first, &r.last, &r.count, &r.ts, &r.incident); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	// The first half, then a restart, then the rest.
	stop := start()
	produce(t, k.Brokers, "sup", evs[:5000])
	testbed.WaitUntil(t, "first half counted", 2*time.Minute, func() (bool, string) {
		rs := stored()
		return len(rs) == 1 && rs[0].count == 4999, fmt.Sprintf("%+v", rs)
	})
	stop()
	stop = start()
	produce(t, k.Brokers, "sup", evs[5000:])
	testbed.WaitUntil(t, "both windows counted", 2*time.Minute, func() (bool, string) {
		rs := stored()
		return len(rs) == 2 && rs[0].count == 9999 && rs[1].count == 4, fmt.Sprintf("%+v", rs)
	})
	rs := stored()
	if r := rs[0]; r.first != "chatty-00000" || r.last != "chatty-09999" || !r.ts.Equal(w0) || r.incident == "" {
		t.Errorf("first window's finding = %+v, want first chatty-00000 at %s, last chatty-09999, an incident", r, w0)
	}
	if r := rs[1]; r.first != "chatty-10000" || r.last != "chatty-10004" || r.incident != rs[0].incident {
		t.Errorf("second window's finding = %+v, want chatty-10000..chatty-10004 on incident %s", r, rs[0].incident)
	}
	var versions uint64
	if err := st.Conn().QueryRow(context.Background(), "SELECT uniqExact(finding_id) FROM "+ch.Database+".findings WHERE rule_id = ?", rule).Scan(&versions); err != nil || versions != 2 {
		t.Errorf("%d finding ids stored for %s (%v), want 2", versions, rule, err)
	}
	// One incident change per window: opened by the first, updated by the
	// second (each suppressed call changed nothing, so notified nothing).
	if got := changes.get(); len(got) != 2 || got[0] != incident.ChangeOpened || got[1] != incident.ChangeUpdated {
		t.Errorf("incident changes %v, want [opened updated]", got)
	}
	// Replay everything: the ingest role produces every finding again
	// (same finding ids, same source positions), the respond role reads
	// the findings topic from its start.
	stop()
	adm := kadm.NewClient(k.Client(t))
	ctx := context.Background()
	if _, err := adm.DeleteGroups(ctx, DefaultGroup, DefaultGroup+"-respond"); err != nil {
		t.Fatal(err)
	}
	stop = start()
	caughtUp := func(group, topic string) func() (bool, string) {
		return func() (bool, string) {
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return false, err.Error()
			}
			got, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return false, err.Error()
			}
			behind := 0
			ends.Each(func(o kadm.ListedOffset) {
				if c, ok := got.Lookup(topic, o.Partition); o.Offset > 0 && (!ok || c.At < o.Offset) {
					behind++
				}
			})
			return behind == 0, fmt.Sprint(behind, " partitions behind")
		}
	}
	testbed.WaitUntil(t, "the events replayed", 2*time.Minute, caughtUp(DefaultGroup, "sup"))
	testbed.WaitUntil(t, "the findings replayed", 2*time.Minute, caughtUp(DefaultGroup+"-respond", "sup.findings"))
	stop()
	if rs := stored(); len(rs) != 2 || rs[0].count != 9999 || rs[1].count != 4 {
		t.Errorf("after the replay: %+v, want counts 9999 and 4", rs)
	}
	var fc uint32
	if err := st.Conn().QueryRow(context.Background(), "SELECT finding_count FROM "+ch.Database+".incidents FINAL WHERE incident_id = ?", rs[0].incident).Scan(&fc); err != nil || fc != 2 {
		t.Errorf("incident finding_count %d (%v), want 2", fc, err)
	}
}
