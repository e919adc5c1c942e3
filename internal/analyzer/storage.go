package analyzer

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pendingWrites tracks the ClickHouse writes not yet stored (retries
// included), so that a server that hangs (SIGSTOP, a stuck disk) or keeps
// failing shows as "storage stalled" while the write still waits, instead
// of looking healthy until a deadline fires.
type pendingWrites struct {
	mu    sync.Mutex
	next  uint64
	since map[uint64]time.Time
}

// start records a write; call the returned func when it is over.
func (p *pendingWrites) start() (done func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.since == nil {
		p.since = map[uint64]time.Time{}
	}
	id := p.next
	p.next++
	p.since[id] = time.Now()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.since, id)
	}
}

// oldest is how long the oldest pending write has been waiting; 0: none.
func (p *pendingWrites) oldest(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	for _, t := range p.since {
		d = max(d, now.Sub(t))
	}
	return d
}

// stalled says whether a write has been waiting longer than StallTimeout.
func (a *Analyzer) stalled() bool { return a.writes.oldest(time.Now()) > a.cfg.StallTimeout }

// registerStorageGauges adds the gauges computed at scrape time.
func (a *Analyzer) registerStorageGauges() {
	const ns = "mcpwatch_analyzer_"
	a.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "storage_stalled",
			Help: "1 while a ClickHouse write has not succeeded for longer than stall_timeout (/readyz then says storage stalled)."},
			func() float64 {
				if a.stalled() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "storage_write_pending_seconds",
			Help: "How long the oldest ClickHouse write not yet stored has been waiting (retries included); 0 when none."},
			func() float64 { return a.writes.oldest(time.Now()).Seconds() }),
	)
}

// observeBatch records a flushed batch's size.
func (a *Analyzer) observeBatch(b *batch) {
	a.m.batchRows.Observe(float64(len(b.events)))
	a.m.batchBytes.Observe(float64(b.bytes))
	a.peakMu.Lock()
	defer a.peakMu.Unlock()
	if n := len(b.events); n > a.peakEvents {
		a.peakEvents = n
		a.m.peakEvents.Set(float64(n))
	}
	if b.bytes > a.peakBytes {
		a.peakBytes = b.bytes
		a.m.peakBytes.Set(float64(b.bytes))
	}
}

// deadLetterBatch replaces b's dead letters with every record of b: the
// ones that did not decode keep their reason, the others get err's.
func (a *Analyzer) deadLetterBatch(b *batch, err error) {
	a.log.Error("insert failed permanently; the batch goes to the dead-letter topic", "records", len(b.records), "events", len(b.events), "err", err)
	reason := "insert: " + err.Error()
	dead := b.dead[:0:0]
	i := 0
	for _, r := range b.records {
		if b.undecoded[r] {
			dead = append(dead, b.dead[i])
			i++
			continue
		}
		dead = append(dead, a.deadLetter(r, "insert", reason))
	}
	b.dead = dead
}

// healthLoop pings ClickHouse every ProbeInterval while no write is
// pending, so an idle analyzer's readiness follows the server too (a
// frozen server fails the ping at clickhouse.ping_timeout). While writes
// are pending they, and their retries' probes, say how the server is.
func (a *Analyzer) healthLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.writes.oldest(time.Now()) > 0 {
			continue
		}
		err := a.o.Store.Ping(ctx)
		if ctx.Err() != nil {
			return
		}
		if a.writes.oldest(time.Now()) == 0 { // no write began meanwhile: the ping is the latest word
			a.setUp(err == nil)
		}
	}
}
