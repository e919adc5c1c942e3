package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// ReplayStats is what the replay sent and what the collector answered.
type ReplayStats struct {
	Requests int
	Events   int // canonical events sent (messages + tool definitions)
	Messages int // of which MCP messages
	Attacks  int // events belonging to an attack case
	Rejected int // events the collector refused (partial success)
	Took     time.Duration
}

// maxEventsPerRequest keeps requests well under the collector's size limit.
const maxEventsPerRequest = 500

// Replay sends the corpus to the collector over OTLP/HTTP (protobuf), one
// tenant's traffic with that tenant's bearer token, in time order, in
// requests of at most maxEventsPerRequest events. Retryable answers (429,
// 503) are retried as an OTLP exporter would.
func (s *Stack) Replay(ctx context.Context, c scenario.Corpus) (ReplayStats, error) {
	start := time.Now()
	var st ReplayStats
	byTenant := map[string][]event.Event{}
	var tenants []string
	for _, l := range c.Events {
		e := l.Event
		if _, ok := byTenant[e.Tenant]; !ok {
			tenants = append(tenants, e.Tenant)
		}
		byTenant[e.Tenant] = append(byTenant[e.Tenant], e)
		st.Events++
		if e.Kind == event.KindMessage {
			st.Messages++
		}
		if l.Label != nil && l.Label.Attack {
			st.Attacks++
		}
	}
	sort.Strings(tenants)
	for _, tenant := range tenants {
		token, ok := s.Tokens[tenant]
		if !ok {
			return st, fmt.Errorf("cannot replay tenant %q: no token for it", tenant)
		}
		for _, chunk := range chunks(byTenant[tenant], maxEventsPerRequest) {
			rejected, err := s.send(ctx, token, chunk)
			if err != nil {
				return st, err
			}
			st.Requests++
			st.Rejected += rejected
		}
	}
	st.Took = time.Since(start)
	return st, nil
}

// chunks splits events into groups of about n, never separating a tools/list
// message from the tool definitions it carries (same trace and span id).
func chunks(evs []event.Event, n int) [][]event.Event {
	groups := map[string][]event.Event{}
	var order []string
	for _, e := range evs {
		k := e.TraceID + "/" + e.SpanID
		if e.SpanID == "" {
			k = e.EventID
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	var out [][]event.Event
	var cur []event.Event
	for _, k := range order {
		if len(cur) > 0 && len(cur)+len(groups[k]) > n {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, groups[k]...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// send posts one OTLP/HTTP traces request and returns the partial-success
// rejected count.
func (s *Stack) send(ctx context.Context, token string, evs []event.Event) (int, error) {
	body, err := ptraceotlp.NewExportRequestFromTraces(scenario.ToTraces(evs)).MarshalProto()
	if err != nil {
		return 0, fmt.Errorf("cannot encode OTLP request: %w", err)
	}
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.OTLPHTTP+"/v1/traces", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("cannot send OTLP request: %w", err)
		}
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			r := ptraceotlp.NewExportResponse()
			if err := r.UnmarshalProto(rb); err != nil {
				return 0, fmt.Errorf("cannot decode OTLP response: %w", err)
			}
			return int(r.PartialSuccess().RejectedSpans()), nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < 20:
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		default:
			return 0, fmt.Errorf("collector answered %s: %s", resp.Status, bytes.TrimSpace(rb))
		}
	}
}
