package backtest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// genBase is the time of the first generated event.
var genBase = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// Path kinds the generator writes into read_file arguments, so that tests
// know how many events a path rule must match.
const (
	pathPlain = iota
	pathAWS   // ~/.aws/credentials: sensitive
	pathSSH   // ~/.ssh/id_rsa: sensitive
)

// genEvents makes n tool calls spread evenly over span, from 12 agents in
// two tenants, each in a few sessions, plus what fires the pack's stateful
// rules: every 2000th call starts a burst of 120 calls in two minutes by
// one agent (threshold), agents call a tool they never used after the
// first 80% of span (new_term, once learning is over), and sensitive reads
// are followed by a fetch_url in the same session (sequence). kinds counts
// the read_file path kinds.
func genEvents(n int, span time.Duration, seed uint64) (evs []event.Event, kinds [3]int) {
	return genEventsAt(n, genBase, span, seed, "ev-")
}

// genEventsAt is genEvents from start, with event ids prefix+number (the
// benchmark generates its million events in chunks).
func genEventsAt(n int, start time.Time, span time.Duration, seed uint64, prefix string) (evs []event.Event, kinds [3]int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	// Regular calls are 2000 of every 2120 events (a burst per 2000).
	step := span * 2000 / time.Duration(n*2120)
	tools := []string{"read_file", "list_dir", "search", "fetch_url", "git_status"}
	add := func(t time.Time, agent int, tool, args string) {
		tenant := "t1"
		if agent%3 == 0 {
			tenant = "t2"
		}
		sess := fmt.Sprintf("s-%d-%d", agent, int(t.Sub(start)/(6*time.Hour)))
		evs = append(evs, event.Event{
			EventID: fmt.Sprintf("%s%08d", prefix, len(evs)), Tenant: tenant, Kind: event.KindMessage, Time: t,
			Source: event.SourceSpan, Observer: event.ObserverServer, Outcome: event.OutcomeOK,
			Method: "tools/call", AgentID: fmt.Sprintf("agent-%d", agent), SessionKey: sess, SessionID: sess,
			ServerName: "files", ToolName: tool, Arguments: args, DurationNs: 1000000,
			TraceID: fmt.Sprintf("%032x", int(t.UnixNano())+len(evs)), SpanID: fmt.Sprintf("%016x", len(evs)),
		})
	}
	for i := 0; len(evs) < n; i++ {
		t := start.Add(time.Duration(i) * step)
		agent := rng.IntN(12)
		tool := tools[rng.IntN(len(tools))]
		if t.Sub(start) > span*8/10 && rng.IntN(20) == 0 {
			tool = fmt.Sprintf("late_tool_%d", rng.IntN(3))
		}
		args := `{"path":"/work/src/main.go"}`
		if tool == "read_file" {
			switch rng.IntN(40) {
			case 0:
				args, kinds[pathAWS] = `{"path":"~/.aws/credentials"}`, kinds[pathAWS]+1
			case 1:
				args, kinds[pathSSH] = `{"path":"~/.ssh/id_rsa"}`, kinds[pathSSH]+1
			default:
				kinds[pathPlain]++
			}
		}
		if tool == "fetch_url" {
			args = `{"url":"https://webhook.example.net/c"}`
		}
		add(t, agent, tool, args)
		if i%2000 == 1000 {
			for j := 0; j < 120 && len(evs) < n; j++ {
				add(t.Add(time.Duration(j)*time.Second), agent, "list_dir", `{"path":"/work"}`)
			}
		}
	}
	return evs, kinds
}
