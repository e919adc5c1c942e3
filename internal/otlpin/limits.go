package otlpin

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// byteSem bounds the bytes of requests in flight. acquire never blocks: a
// full semaphore is answered with a retryable error so senders back off.
type byteSem struct {
	max int64
	cur atomic.Int64
}

func (s *byteSem) tryAcquire(n int64) bool {
	for {
		c := s.cur.Load()
		if c+n > s.max && c > 0 { // one request alone may always run (n ≤ max request)
			return false
		}
		if s.cur.CompareAndSwap(c, c+n) {
			return true
		}
	}
}

func (s *byteSem) release(n int64) { s.cur.Add(-n) }

// tenantLimiter is a token bucket of events per tenant.
type tenantLimiter struct {
	rate      float64
	burst     int
	overrides map[string]float64

	mu  sync.Mutex
	lim map[string]*rate.Limiter
}

func newTenantLimiter(l LimitsConfig) *tenantLimiter {
	return &tenantLimiter{rate: l.TenantRate, burst: l.TenantBurst, overrides: l.TenantRates, lim: map[string]*rate.Limiter{}}
}

// allow takes n events from tenant's bucket, or says how long to wait.
func (t *tenantLimiter) allow(tenant string, n int, now time.Time) (bool, time.Duration) {
	r := t.rate
	if o, ok := t.overrides[tenant]; ok {
		r = o
	}
	if r < 0 || n == 0 {
		return true, 0
	}
	t.mu.Lock()
	l := t.lim[tenant]
	if l == nil {
		b := t.burst
		if _, ok := t.overrides[tenant]; ok || b <= 0 {
			b = int(math.Max(1, 2*r))
		}
		l = rate.NewLimiter(rate.Limit(r), b)
		t.lim[tenant] = l
	}
	t.mu.Unlock()
	if n > l.Burst() { // a request larger than the burst is admitted when the bucket is full
		n = l.Burst()
	}
	res := l.ReserveN(now, n)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}
