package scenario

import (
	"fmt"
	"sort"
	"time"
)

// jobServers are what a chatty back-office worker uses: a job queue it
// polls all day. None of its tools is on the demo's allowlist: a
// deployment that opts in to the static allowlist without listing them
// gets a hit per call (suppressed to one finding per tool and hour).
func jobServers() []*Server {
	return []*Server{
		{Name: "jobs", Version: "4.0.2", Address: "mcp-jobs.ops.svc", Port: 8080, Transport: "tcp", Tools: []Tool{
			tool("list_jobs", "List the queued and running jobs of a queue.", "queue"),
			tool("get_job_status", "Get the status and progress of one job.", "job_id"),
			tool("ack_job", "Acknowledge a finished job so it leaves the queue.", "job_id"),
		}},
	}
}

// BenignVolume generates at least n benign tool calls of one chatty agent:
// a sync worker that lists a queue, polls each job every few seconds until
// it finishes (the same call, again and again), acknowledges it and moves
// on, in sessions of a few hundred calls spread over BenignSpan from
// BaseTime (the first in the first hour, while the rules learn). It is the
// traffic that floods a rule firing per call: `rules eval` reports findings
// per 10k benign events over it.
func BenignVolume(seed int64, n int) Corpus {
	g := newGen(seed, 7)
	a := &agent{
		profile: "volume", tenant: "acme", id: "sync-worker-1", name: "queue-sync",
		service: "ops-sync", client: "mcp-go", clientVer: "0.31.0",
		users: []string{"svc-sync"}, servers: jobServers(),
	}
	queues := []string{"invoices", "exports", "thumbnails"}
	calls, k := 0, 0
	sessionAt := func(t time.Time) {
		k++
		l := g.label(&Label{Case: fmt.Sprintf("benign/volume/%d", k)})
		s := g.session(a, l, t)
		s.connect("jobs")
		// A worker, not a person: 2-6 s between calls, not a think time.
		call := func(name string, args, result any) {
			at := s.t
			s.call("jobs", name, args, result)
			s.t = at.Add(2*time.Second + time.Duration(g.r.Int64N(int64(4*time.Second))))
			calls++
		}
		for i, jobs := 0, 100+g.r.IntN(200); i < jobs && calls < n; i++ {
			q := g.pick(queues)
			call("list_jobs", map[string]any{"queue": q}, map[string]any{"queued": g.r.IntN(40), "running": 1 + g.r.IntN(4)})
			id := fmt.Sprintf("job-%s-%06d", q, g.r.IntN(1_000_000))
			polls := 1 + g.r.IntN(8)
			for p := 0; p < polls; p++ {
				st := "running"
				if p == polls-1 {
					st = "done"
				}
				call("get_job_status", map[string]any{"job_id": id}, map[string]any{"job_id": id, "status": st, "progress": (p + 1) * 100 / polls})
			}
			call("ack_job", map[string]any{"job_id": id}, map[string]any{"ok": true})
		}
	}
	sessionAt(BaseTime.Add(10 * time.Minute))
	for calls < n {
		sessionAt(BaseTime.Add(time.Hour + time.Duration(g.r.Int64N(int64(BenignSpan-4*time.Hour)))))
	}
	c := *g.out
	sort.SliceStable(c.Events, func(i, j int) bool { return c.Events[i].Event.Time.Before(c.Events[j].Event.Time) })
	return c
}
