package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/incident"
	"github.com/mcpwatch/mcpwatch/internal/notify"
)

// BenchmarkNotifyDeliver measures the notification leg alone: an incident
// change → outbox (fsync) → signed webhook POST → done marker, with 4
// workers and a local receiver. Reports deliveries/s and the enqueue →
// receipt latency.
//
//	go test -run '^$' -bench NotifyDeliver ./internal/notify/
func BenchmarkNotifyDeliver(b *testing.B) {
	var mu sync.Mutex
	got := map[string]time.Time{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Header.Get("Idempotency-Key")] = time.Now()
		mu.Unlock()
	}))
	defer hook.Close()
	b.Setenv("BENCH_SECRET", "s")
	n, err := notify.New(notify.Config{
		DataDir:   b.TempDir(),
		Receivers: []notify.ReceiverConfig{{Name: "hook", Type: notify.TypeWebhook, URL: hook.URL, Secret: notify.Secret{Env: "BENCH_SECRET"}}},
		Routes:    []notify.Route{{Receivers: []string{"hook"}}},
	}, notify.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	inc, fs := sampleIncident()
	sent := make(map[string]time.Time, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		inc.IncidentID = fmt.Sprintf("inc-bench-%d", i)
		sent[notify.MessageID("hook", inc.IncidentID, fmt.Sprint(inc.Version), "trigger")] = time.Now()
		n.IncidentChanged(ctx, incident.Change{Kind: incident.ChangeOpened, Incident: inc, Findings: fs})
	}
	for n.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for id, t0 := range sent {
		if t1, ok := got[id]; ok {
			lat = append(lat, t1.Sub(t0))
		}
	}
	if len(lat) != b.N {
		b.Fatalf("%d of %d delivered", len(lat), b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
