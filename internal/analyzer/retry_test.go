package analyzer

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock is retryPolicy's clock in tests: a wait of one of the fired
// durations ends at once, any other never does; every wait is recorded.
type fakeClock struct {
	fires  func(time.Duration) bool
	waited []time.Duration
}

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	c.waited = append(c.waited, d)
	ch := make(chan time.Time, 1)
	if c.fires(d) {
		ch <- time.Time{}
	}
	return ch
}

func TestRetryPolicyBackoffHasJitterAndCap(t *testing.T) {
	clock := &fakeClock{fires: func(time.Duration) bool { return true }}
	p := retryPolicy{initial: 100 * time.Millisecond, max: time.Second, after: clock.after}
	calls := 0
	err := p.do(context.Background(), func(context.Context) error {
		calls++
		if calls <= 8 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || calls != 9 || len(clock.waited) != 8 {
		t.Fatalf("err %v, calls %d, waits %v", err, calls, clock.waited)
	}
	d := p.initial
	for i, w := range clock.waited {
		if w < d/2 || w > min(3*d/2, p.max) {
			t.Errorf("wait %d: %s outside [%s, %s]", i, w, d/2, min(3*d/2, p.max))
		}
		d = min(2*d, p.max)
	}
}

func TestRetryPolicyPermanentErrorIsNotRetried(t *testing.T) {
	clock := &fakeClock{fires: func(time.Duration) bool { return true }}
	bad := errors.New("schema mismatch")
	p := retryPolicy{initial: time.Millisecond, max: time.Millisecond, after: clock.after,
		permanent: func(err error) bool { return errors.Is(err, bad) }}
	calls := 0
	err := p.do(context.Background(), func(context.Context) error { calls++; return bad })
	if calls != 1 || len(clock.waited) != 0 || !isPermanent(err) || !errors.Is(err, bad) {
		t.Fatalf("calls %d, waits %v, err %v", calls, clock.waited, err)
	}
}

// TestRetryPolicyProbeEndsTheWait: with an hour of backoff that never
// ends, the retry happens right after the first probe that succeeds.
func TestRetryPolicyProbeEndsTheWait(t *testing.T) {
	const every = 10 * time.Millisecond
	clock := &fakeClock{fires: func(d time.Duration) bool { return d == every }}
	probes := 0
	p := retryPolicy{initial: time.Hour, max: time.Hour, after: clock.after, probeEvery: every,
		probe: func(context.Context) error {
			probes++
			if probes < 3 {
				return errors.New("still down")
			}
			return nil
		}}
	calls := 0
	err := p.do(context.Background(), func(context.Context) error {
		calls++
		if calls == 1 {
			return errors.New("down")
		}
		return nil
	})
	if err != nil || calls != 2 || probes != 3 {
		t.Fatalf("err %v, calls %d, probes %d", err, calls, probes)
	}
}

func TestRetryPolicyStopsWithItsContext(t *testing.T) {
	clock := &fakeClock{fires: func(time.Duration) bool { return false }}
	p := retryPolicy{initial: time.Hour, max: time.Hour, after: clock.after}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := p.do(ctx, func(context.Context) error { calls++; cancel(); return errors.New("down") })
	if calls != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("calls %d, err %v", calls, err)
	}
}
