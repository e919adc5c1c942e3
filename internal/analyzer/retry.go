package analyzer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/store"
)

// retryPolicy is the one retry policy of the roles' loops (ClickHouse
// writes, Kafka produces, state reloads, metadata reads): exponential
// backoff from initial to max with jitter, a permanent-error check so a
// deterministic failure is returned at once instead of stalling its
// partition, and an optional probe that ends a wait as soon as the
// dependency answers again, so recovery does not wait out the backoff.
type retryPolicy struct {
	initial, max time.Duration
	// permanent reports errors retrying cannot fix; nil: none.
	permanent func(error) bool
	// probe, when set, runs every probeEvery while a wait lasts; its first
	// success ends the wait.
	probe      func(context.Context) error
	probeEvery time.Duration
	// onRetry is told each failed attempt and the wait that follows.
	onRetry func(attempt int, wait time.Duration, err error)
	// onProbe is told each probe's result.
	onProbe func(err error)
	// after is the clock; nil means time.After (tests pass their own).
	after func(time.Duration) <-chan time.Time
}

// errPermanent marks an error as permanent for retryPolicy.do.
var errPermanent = errors.New("permanent failure, not retried")

// do runs fn until it succeeds, fails permanently, or ctx ends. A
// permanent error is returned wrapped with errPermanent.
func (p retryPolicy) do(ctx context.Context, fn func(context.Context) error) error {
	d := p.initial
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		if p.permanent != nil && p.permanent(err) {
			return fmt.Errorf("%w: %w", errPermanent, err)
		}
		w := p.jitter(d)
		if p.onRetry != nil {
			p.onRetry(attempt, w, err)
		}
		if werr := p.wait(ctx, w); werr != nil {
			return errors.Join(werr, err)
		}
		d = min(2*d, p.max)
	}
}

// jitter spreads d over [d/2, 3d/2), capped at max, so that instances
// failing together do not retry together.
func (p retryPolicy) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return min(d/2+rand.N(d), p.max)
}

// wait sleeps w, or less when a probe succeeds; an error means ctx ended.
func (p retryPolicy) wait(ctx context.Context, w time.Duration) error {
	after := p.after
	if after == nil {
		after = time.After
	}
	end := after(w)
	var probe <-chan time.Time
	if p.probe != nil && p.probeEvery > 0 && p.probeEvery < w {
		probe = after(p.probeEvery)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			return nil
		case <-probe:
			err := p.probe(ctx)
			if p.onProbe != nil {
				p.onProbe(err)
			}
			if err == nil {
				return nil
			}
			probe = after(p.probeEvery)
		}
	}
}

// policy is the analyzer's retry policy for what, logging each retry;
// store errors that are deterministic (store.IsPermanent) are permanent.
func (a *Analyzer) policy(what string) retryPolicy {
	return retryPolicy{
		initial: a.cfg.RetryInitial, max: a.cfg.RetryMax,
		permanent: store.IsPermanent,
		onRetry: func(attempt int, wait time.Duration, err error) {
			a.log.Warn("write failed; retrying", "what", what, "attempt", attempt, "backoff", wait, "err", err)
		},
	}
}

// storePolicy is policy plus the recovery probe: while a ClickHouse write
// waits to be retried, the store is pinged every ProbeInterval and the
// first answer ends the wait.
func (a *Analyzer) storePolicy(what string) retryPolicy {
	p := a.policy(what)
	p.probe = a.probe
	p.probeEvery = a.cfg.ProbeInterval
	return p
}

// probe pings ClickHouse, counting the result.
func (a *Analyzer) probe(ctx context.Context) error {
	err := a.o.Store.Ping(ctx)
	if err != nil {
		a.m.probes.WithLabelValues("failed").Inc()
	} else {
		a.m.probes.WithLabelValues("ok").Inc()
	}
	return err
}

// retryWith runs fn under p; the error names what failed.
func (a *Analyzer) retryWith(ctx context.Context, what string, p retryPolicy, fn func(context.Context) error) error {
	if err := p.do(ctx, fn); err != nil {
		return fmt.Errorf("cannot %s: %w", what, err)
	}
	return nil
}

// retry runs fn under the analyzer's policy until it succeeds, fails
// permanently, or ctx ends.
func (a *Analyzer) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	return a.retryWith(ctx, what, a.policy(what), fn)
}

// isPermanent reports whether err came from a permanent failure (retrying
// stopped because it could not help).
func isPermanent(err error) bool { return errors.Is(err, errPermanent) }
