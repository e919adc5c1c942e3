package analyzer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// recordingDetector flags every error outcome; recordingSink remembers
// what it was given. They stand in for internal/detect and
// internal/incident, which plug in through the same interfaces.
type recordingDetector struct{}

func (recordingDetector) Detect(_ context.Context, evs []event.Event) ([]event.Finding, error) {
	var out []event.Finding
	for _, e := range evs {
		if e.Outcome == event.OutcomeError {
			out = append(out, event.Finding{FindingID: "f-" + e.EventID, Tenant: e.Tenant, Time: e.Time, RuleID: "errors",
				Severity: event.SeverityLow, AgentID: e.AgentID, EventIDs: []string{e.EventID}})
		}
	}
	return out, nil
}

type recordingSink struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *recordingSink) HandleFindings(_ context.Context, fs []event.Finding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		s.ids[f.FindingID] = true
	}
	return nil
}

func (s *recordingSink) len() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.ids) }

func TestConsumeInsertDeadLetterAndCommit(t *testing.T) {
	ch := testbed.ClickHouse(t)
	k := testbed.Kfake(t)
	st := openStore(t, ch.Addr, ch.Database)
	kc := kafka.Config{Brokers: k.Brokers, Partitions: 3, Topic: "ev", DeadLetterTopic: "ev.dlq"}
	ensureTopics(t, kc)
	evs := testEvents("a", 1000)
	bad := []byte("\x0a\xff\xff\xffnot protobuf")
	produce(t, k.Brokers, "ev", evs[:500], bad)
	sink := &recordingSink{ids: map[string]bool{}}
	a, stop := running(t, Options{Kafka: kc, Store: st, Detector: recordingDetector{}, Sink: sink,
		Config:  Config{BatchRows: 200, BatchInterval: 200 * time.Millisecond},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api:"+r.URL.Path) })})
	produce(t, k.Brokers, "ev", evs[500:])
	testbed.WaitUntil(t, "all events stored", 2*time.Minute, func() (bool, string) {
		n := distinct(t, st)
		// The rollup's part becomes visible just after the events' part.
		c, _ := st.CallsTotal(context.Background(), store.CallsQuery{Tenant: "acme", From: base, To: base.Add(time.Hour)})
		return n == uint64(len(evs)) && c == 990, fmt.Sprint(n, c)
	})
	testbed.WaitUntil(t, "sink saw the findings", time.Minute, func() (bool, string) { return sink.len() == 100, fmt.Sprint(sink.len()) })

	// Field values, including the redacted arguments.
	ctx := context.Background()
	conv, err := st.Conversation(ctx, store.ConversationQuery{Tenant: "acme", SessionKey: "sess-3", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(conv) != 143 {
		t.Fatalf("session sess-3 has %d events", len(conv))
	}
	for _, e := range conv {
		if e.Kind == event.KindMessage && (e.Arguments != `{"token":"[REDACTED:github_token]","path":"/tmp/x"}` || !e.HasTag("secret:github_token") || e.ArgumentsSize != 120) {
			t.Fatalf("event %s: arguments %q tags %v", e.EventID, e.Arguments, e.Tags)
		}
	}
	total, err := st.CallsTotal(ctx, store.CallsQuery{Tenant: "acme", From: base, To: base.Add(time.Hour)})
	if err != nil || total != 990 { // 10 of the 1000 are tool definitions
		t.Fatalf("calls %d %v", total, err)
	}
	defs, err := st.ToolDefinitionHistory(ctx, "acme", "srv-2", "tool-2")
	if err != nil || len(defs) != 1 || defs[0].Description != "Reads files" {
		t.Fatalf("tool definitions %+v %v", defs, err)
	}
	var nf uint64
	if err := st.Conn().QueryRow(ctx, "SELECT uniqExact(finding_id) FROM "+ch.Database+".findings").Scan(&nf); err != nil || nf != 100 {
		t.Fatalf("findings %d %v", nf, err)
	}

	// The bad record went to the dead-letter topic with its reason.
	dl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("ev.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fs := dl.PollRecords(pctx, 10)
	if fs.NumRecords() != 1 {
		t.Fatalf("dead letters: %d (%v)", fs.NumRecords(), fs.Errors())
	}
	r := fs.Records()[0]
	hdr := map[string]string{}
	for _, h := range r.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if string(r.Value) != string(bad) || !strings.HasPrefix(hdr[HeaderDLQReason], "decode: ") || hdr[HeaderDLQTopic] != "ev" {
		t.Fatalf("dead letter %q %v", r.Value, hdr)
	}

	// Admin listener: health, readiness, metrics, mounted API.
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, _ := get("/healthz"); c != 200 {
		t.Fatalf("healthz %d", c)
	}
	if c, _ := get("/readyz"); c != 200 {
		t.Fatalf("readyz %d", c)
	}
	if c, b := get("/api/v1/x"); c != 200 || b != "api:/api/v1/x" {
		t.Fatalf("api %d %q", c, b)
	}
	_, m := get("/metrics")
	for _, want := range []string{
		`mcpwatch_analyzer_dead_lettered_total{reason="decode"} 1`,
		`mcpwatch_analyzer_rows_inserted_total{table="findings"} 100`,
		`mcpwatch_analyzer_consumer_lag{partition="0",topic="ev"}`,
		`mcpwatch_analyzer_batch_rows_count`,
		`mcpwatch_analyzer_insert_duration_seconds_bucket{table="events"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	stop()

	// Offsets are committed: everything, including the dead letter.
	adm, err := kafka.NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	offs, err := kadm.NewClient(adm).FetchOffsets(ctx, DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != int64(len(evs)+1) {
		t.Fatalf("committed %d offsets, want %d", committed, len(evs)+1)
	}
}
