package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/analyzer"
	"github.com/mcpwatch/mcpwatch/internal/api"
	"github.com/mcpwatch/mcpwatch/internal/collector"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/notify"
	"github.com/mcpwatch/mcpwatch/internal/otlpin"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
	"github.com/mcpwatch/mcpwatch/internal/store"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// BenchmarkOTLPToWebhookLatency measures, through the whole pipeline
// (OTLP/HTTP → collector → Kafka (kfake) → analyzer with its three roles
// (ingest: decode, detect with the shipped rule pack, insert into
// ClickHouse; detect: the rules grouped wider than an agent; respond:
// findings topic → incident manager → outbox → webhook)), the time from sending an OTLP request that carries an attack
// span to the signed webhook that reports its finding arriving at a local
// receiver, while benign traffic flows at MCPWATCH_BENCH_RATE events/s
// (default 5000) in requests of 250 spans, with about 5 attack spans/s.
// Each iteration runs benchDuration of traffic; p50/p99 are over every
// attack span of the iteration.
//
//	go test -run '^$' -bench OTLPToWebhook -benchtime 1x ./internal/notify/
func BenchmarkOTLPToWebhookLatency(b *testing.B) {
	const (
		perRequest    = 250 // spans per OTLP request
		benchDuration = 20 * time.Second
		maxAttacks    = 2000
	)
	rate := 5000 // events/s; MCPWATCH_BENCH_RATE overrides
	if v, err := strconv.Atoi(os.Getenv("MCPWATCH_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	attackEvery := max(1, rate/perRequest/5) // about 5 attack spans per second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	k := testbed.Kfake(b)
	ch := testbed.ClickHouse(b)
	st, err := store.Open(ctx, store.Config{Addr: []string{ch.Addr}, Database: ch.Database})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	kcfg := kafka.Config{Brokers: k.Brokers, Partitions: 4, DialTimeout: time.Second}

	var ccfg collector.Config
	ccfg.Receiver.GRPC.Endpoint = "-"
	ccfg.Receiver.HTTP.Endpoint = "127.0.0.1:0"
	ccfg.Admin.Endpoint = "127.0.0.1:0"
	// Benign traffic is tenant "bench"; every attack span comes from its own
	// tenant, so it opens its own incident (the SSRF rule groups per tenant)
	// and every attack is measured by an "opened" notification.
	ccfg.Receiver.Auth.Tokens = []otlpin.TokenConfig{{Tenant: "bench", Token: "bench-token-0123456789"}}
	for i := range maxAttacks {
		ccfg.Receiver.Auth.Tokens = append(ccfg.Receiver.Auth.Tokens, otlpin.TokenConfig{Tenant: fmt.Sprintf("atk-%d", i), Token: fmt.Sprintf("attack-token-%06d", i)})
	}
	ccfg.Kafka = kcfg
	ccfg.ReadinessInterval = 200 * time.Millisecond
	col, err := collector.New(ccfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	if err := col.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = col.Shutdown(sctx)
	}()
	for col.Ready() != nil {
		time.Sleep(50 * time.Millisecond)
	}

	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	// As `analyzer run` wires it: the ingest role's engine hands the rules
	// grouped wider than an agent to the detect role's (all three roles
	// in this one analyzer).
	eng, err := detect.New(pack, detect.Options{Logger: quiet, Repartition: true})
	if err != nil {
		b.Fatal(err)
	}
	groups, err := detect.New(pack, detect.Options{Logger: quiet, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}

	// The webhook receiver: when did each attack agent's finding arrive?
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		if err := notify.Verify([]byte("bench-secret"), r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), body, now, time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p notify.WebhookPayload
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		for _, f := range p.Findings {
			if a, _ := f["agent_id"].(string); strings.HasPrefix(a, "bench-attacker-") {
				if _, ok := arrived[a]; !ok {
					arrived[a] = now
				}
			}
		}
		mu.Unlock()
	}))
	defer hook.Close()
	b.Setenv("BENCH_HOOK_SECRET", "bench-secret")
	b.Setenv("BENCH_API_TOKEN", "bench-api-token-0123456789")
	stack, err := analyzer.NewResponder(ctx, analyzer.ResponseConfig{
		DataDir: b.TempDir(),
		Notify: notify.Config{
			Receivers: []notify.ReceiverConfig{{Name: "hook", Type: notify.TypeWebhook, URL: hook.URL, Secret: notify.Secret{Env: "BENCH_HOOK_SECRET"}}},
			Routes:    []notify.Route{{RuleIDs: []string{"mcp-ssrf-internal-address"}, Receivers: []string{"hook"}}},
		},
		Tokens: []analyzer.TokenConfig{{Name: "bench", Role: api.RoleViewer, Env: "BENCH_API_TOKEN"}},
	}, analyzer.ResponderOptions{Conn: st.Conn(), Database: st.Database(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	// When the incident manager saw each attack's finding (splits the
	// latency into OTLP → incident and incident → webhook).
	seen := map[string]time.Time{}
	stack.Manager.Subscribe(listenerFunc(func(c incident.Change) {
		now := time.Now()
		mu.Lock()
		for _, f := range c.Findings {
			if _, ok := seen[f.AgentID]; !ok && strings.HasPrefix(f.AgentID, "bench-attacker-") {
				seen[f.AgentID] = now
			}
		}
		mu.Unlock()
	}))
	stackDone := make(chan struct{})
	go func() { _ = stack.Run(ctx); close(stackDone) }()

	acfg := analyzer.Config{AdminAddr: "-"} // default batch interval (250ms); MCPWATCH_BENCH_BATCH_INTERVAL overrides
	if d, err := time.ParseDuration(os.Getenv("MCPWATCH_BENCH_BATCH_INTERVAL")); err == nil && d > 0 {
		acfg.BatchInterval = d
	}
	an, err := analyzer.New(analyzer.Options{Kafka: kcfg, Config: acfg, Store: st,
		Detector: eng, DetectState: groups, Sink: stack.Manager, Handler: stack.Handler, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	anDone := make(chan struct{})
	go func() { _ = an.Run(ctx); close(anDone) }()
	defer func() { cancel(); <-anDone; <-stackDone }()

	benign := scenario.Benign(1, 20000).Plain()
	url := "http://" + col.HTTPAddr() + "/v1/traces"
	send := func(token string, evs []event.Event) error {
		body, err := ptraceotlp.NewExportRequestFromTraces(scenario.ToTraces(evs)).MarshalProto()
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("collector answered %d", resp.StatusCode)
		}
		return nil
	}

	var all, toIncident []time.Duration
	sentTotal, attacks := 0, 0
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		sentAt := map[string]time.Time{}
		tick := time.NewTicker(time.Second * perRequest / time.Duration(rate))
		start := time.Now()
		seq := 0
		for time.Since(start) < benchDuration {
			<-tick.C
			evs := make([]event.Event, 0, perRequest)
			for j := 0; j < perRequest; j++ {
				e := benign[(seq*perRequest+j)%len(benign)]
				e.Time = time.Now().UTC()
				e.SpanID = fmt.Sprintf("%08x%08x", it*1_000_000+seq, j)
				evs = append(evs, e)
			}
			if err := send("bench-token-0123456789", evs); err != nil {
				b.Fatal(err)
			}
			sentTotal += len(evs)
			if seq%attackEvery == 0 && attacks < maxAttacks {
				a := evs[0]
				attacker := fmt.Sprintf("bench-attacker-%d", attacks)
				a.Kind, a.Method, a.ToolName, a.ServerName = event.KindMessage, "tools/call", "http_request", "fetch"
				a.AgentID, a.Arguments, a.Outcome = attacker, `{"url":"http://169.254.169.254/latest/meta-data/iam/security-credentials/"}`, event.OutcomeOK
				a.SpanID = fmt.Sprintf("ffff%012x", attacks)
				a.Tenant = ""
				t0 := time.Now()
				if err := send(fmt.Sprintf("attack-token-%06d", attacks), []event.Event{a}); err != nil {
					b.Fatal(err)
				}
				sentAt[attacker] = t0
				attacks++
				sentTotal++
			}
			seq++
		}
		tick.Stop()
		elapsed := time.Since(start)
		// Wait (bounded) for the last webhooks.
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := 0
			for a := range sentAt {
				if _, ok := arrived[a]; ok {
					n++
				}
			}
			mu.Unlock()
			if n == len(sentAt) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		// Latency over the run, in send order (a growing series = backlog).
		var series []string
		for i := 0; i < attacks; i += max(1, attacks/10) {
			a := fmt.Sprintf("bench-attacker-%d", i)
			if t1, ok := arrived[a]; ok {
				series = append(series, fmt.Sprintf("%.1fs", t1.Sub(sentAt[a]).Seconds()))
			}
		}
		b.Logf("latency over the run (every %dth attack): %v", max(1, attacks/10), series)
		missing := 0
		for a, t0 := range sentAt {
			if t1, ok := arrived[a]; ok {
				all = append(all, t1.Sub(t0))
				toIncident = append(toIncident, seen[a].Sub(t0))
			} else {
				missing++
			}
		}
		mu.Unlock()
		if missing > 0 {
			var diag []string
			for a := range sentAt {
				if _, ok := arrived[a]; ok {
					continue
				}
				var evN, fN uint64
				_ = st.Conn().QueryRow(ctx, "SELECT count() FROM "+st.Database()+".events WHERE agent_id = ?", a).Scan(&evN)
				_ = st.Conn().QueryRow(ctx, "SELECT count() FROM "+st.Database()+".findings WHERE agent_id = ?", a).Scan(&fN)
				diag = append(diag, fmt.Sprintf("%s: %d events, %d findings", a, evN, fN))
			}
			b.Fatalf("%d of %d attack spans never reached the webhook: %v", missing, len(sentAt), diag)
		}
		b.ReportMetric(float64(seq*perRequest)/elapsed.Seconds(), "events/s")
	}
	b.StopTimer()
	slices.Sort(all)
	slices.Sort(toIncident)
	qq := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	q := func(p float64) float64 { return qq(all, p) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(qq(toIncident, 0.50), "incident-p50-ms")
	b.ReportMetric(qq(toIncident, 0.99), "incident-p99-ms")
	b.ReportMetric(float64(len(all)), "attacks")
	b.Logf("%d events sent, %d attack spans measured: p50 %.0f ms, p99 %.0f ms, max %.0f ms", sentTotal, len(all), q(0.5), q(0.99), q(1))
}

type listenerFunc func(c incident.Change)

func (f listenerFunc) IncidentChanged(_ context.Context, c incident.Change) { f(c) }
