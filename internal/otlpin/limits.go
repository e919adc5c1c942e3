package otlpin

import (
	"context"
	"io"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// budget bounds the bytes of requests in flight: in all, and per tenant
// so that one tenant cannot take the capacity of the others. Reserving
// never blocks, except for a gRPC message's room (lease.waitAtLeast): a
// full budget is answered with a retryable error so that senders back off.
type budget struct {
	max       int64 // MaxInFlightBytes
	tenantMax int64 // MaxTenantInFlightBytes; not applied to "" (auth disabled)
	retry     time.Duration

	mu      sync.Mutex
	cur     int64
	tenants map[string]int64
	fullAt  time.Time     // when a reservation last failed on max
	freed   chan struct{} // closed at the next release; nil while nobody waits
}

func newBudget(l LimitsConfig) *budget {
	return &budget{max: l.MaxInFlightBytes, tenantMax: l.MaxTenantInFlightBytes, retry: l.RetryAfter, tenants: map[string]int64{}}
}

func (b *budget) inFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur
}

// reserve adds n bytes for tenant to a request that then holds total
// bytes, or says why not: a request whose total could never fit is too
// large, else the budget is full for now.
func (b *budget) reserve(tenant string, n, total int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.reserveLocked(tenant, n, total); err != nil {
		return err
	}
	return nil
}

func (b *budget) reserveLocked(tenant string, n, total int64) *Error {
	switch {
	case tenant != "" && total > b.tenantMax:
		return NewError(TooLarge, "too_large", 0, nil,
			"the request needs ~%d bytes of memory to decode, more than a tenant's in-flight share of %d bytes (receiver.limits.max_tenant_in_flight_bytes); send smaller requests", total, b.tenantMax)
	case total > b.max:
		return NewError(TooLarge, "too_large", 0, nil,
			"the request needs ~%d bytes of memory to decode, more than the in-flight limit of %d bytes; send smaller requests", total, b.max)
	case b.cur+n > b.max:
		b.fullAt = nowFunc()
		return NewError(Unavailable, "in_flight_full", b.retry, nil, "collector is at its in-flight limit; retry later")
	case tenant != "" && b.tenants[tenant]+n > b.tenantMax:
		// The tenant, not the collector, is out of room: RESOURCE_EXHAUSTED
		// with RetryInfo on gRPC (OTLP retries it only with RetryInfo), 429
		// on HTTP, as for its rate limit.
		return NewError(RateLimited, "tenant_in_flight_full", b.retry, nil,
			"tenant %q has %d bytes of requests in flight, its share of the collector; retry later", tenant, b.tenants[tenant])
	}
	b.cur += n
	if tenant != "" {
		b.tenants[tenant] += n
	}
	return nil
}

// reserveOrWait is reserve that, when the budget is full for now, also
// returns a channel closed at the next release (taken under the same lock,
// so no release is missed in between).
func (b *budget) reserveOrWait(tenant string, n, total int64) (<-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.reserveLocked(tenant, n, total)
	if err == nil {
		return nil, nil
	}
	if err.Class == TooLarge {
		return nil, err
	}
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return b.freed, err
}

func (b *budget) release(tenant string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur -= n
	if tenant != "" {
		if b.tenants[tenant] -= n; b.tenants[tenant] == 0 {
			delete(b.tenants, tenant)
		}
	}
	if b.freed != nil { // someone waits for room
		close(b.freed)
		b.freed = nil
	}
}

// lastFull is when a request was last refused because the whole budget
// was taken (zero if never).
func (b *budget) lastFull() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fullAt
}

// lease is what one request holds of the budget; not safe for concurrent
// use (one request is served by one goroutine).
type lease struct {
	b      *budget
	tenant string
	held   int64
}

// grow reserves n more bytes.
func (l *lease) grow(n int64) error {
	if err := l.b.reserve(l.tenant, n, l.held+n); err != nil {
		return err
	}
	l.held += n
	return nil
}

// atLeast tops the lease up to n bytes.
func (l *lease) atLeast(n int64) error {
	if n <= l.held {
		return nil
	}
	return l.grow(n - l.held)
}

// waitAtLeast tops the lease up to n bytes, waiting for room while the
// budget is full for now, until ctx ends (then the last refusal).
func (l *lease) waitAtLeast(ctx context.Context, n int64) error {
	for n > l.held {
		wait, err := l.b.reserveOrWait(l.tenant, n-l.held, n)
		if err == nil {
			l.held = n
			return nil
		}
		if wait == nil {
			return err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return err
		}
	}
	return nil
}

// shrink gives back what the lease holds above n bytes.
func (l *lease) shrink(n int64) {
	if l.held > n {
		l.b.release(l.tenant, l.held-n)
		l.held = n
	}
}

func (l *lease) release() {
	l.b.release(l.tenant, l.held)
	l.held = 0
}

// reservingReader reserves every byte it reads, as it arrives: a body
// announced as 8 MiB and sent a byte at a time holds a byte at a time.
type reservingReader struct {
	r io.Reader
	l *lease
}

func (rr reservingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if n > 0 {
		if gerr := rr.l.grow(int64(n)); gerr != nil {
			return n, gerr
		}
	}
	return n, err
}

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
