// Package refresher keeps a token fresh: it exchanges, stores the result,
// and decides when to exchange again.
//
// Scheduling rules:
//
//  1. After a success, the next exchange is due after the refresh interval
//     less up to 10% random jitter (so a fleet does not refresh in step), or
//     once 80% of the token's remaining lifetime has passed, whichever is
//     sooner (the kubelet's rule for projected tokens). With MinMargin set,
//     it is due MinMargin before expiry if that is sooner, but never before
//     half the remaining lifetime has passed: a two-minute token is replaced
//     after one minute, which leaves a minute for failed exchanges.
//  2. After a failure, the next attempt follows exponential backoff with
//     jitter, starting near 1 s and capped at MaxBackoff; while the stored
//     token is unexpired, it is also capped at half the time that token has
//     left (at least 500 ms), so that retries quicken as expiry nears. It
//     comes later only when the server asked for more with Retry-After
//     (capped at 5 minutes).
//  3. Delays are measured on the monotonic clock, so a wall-clock step does
//     not stall or rush them; a token's expiry is wall time, so while one is
//     known the wait is also checked against the wall clock at least once a
//     minute, which catches a node that was suspended.
//  4. While waiting after a success, Verify (when set) checks that the
//     stored token is still in place: every VerifyEvery, and at once on each
//     signal from Recheck (a filesystem event). When it is not (the file
//     removed or replaced), the stored token is written again, without an
//     exchange; only if that write fails does the next exchange happen at
//     once. A lost token file is thus restored within moments, even while
//     the issuer is down.
//  5. A request through OnDemand ends any wait: the next exchange starts at
//     once, or when the floor (500 ms) since the last one began has passed,
//     and answers every request that arrived before it started.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/exchange"
)

// Defaults for the zero values of Refresher's fields.
const (
	DefaultInterval   = 5 * time.Minute
	DefaultMaxBackoff = 30 * time.Second
	initialBackoff    = time.Second
	maxRetryAfter     = 5 * time.Minute
	lifetimeFraction  = 0.8
	intervalJitter    = 0.1
	minDelay          = 500 * time.Millisecond
	wallCheck         = time.Minute
	// DefaultVerifyEvery is the period of Verify when VerifyEvery is zero;
	// Recheck makes it a fallback for missed filesystem events.
	DefaultVerifyEvery = time.Minute
)

// ShortLivedMargin is the MinMargin tokend sets for the two-minute tokens of
// the service-account exchange.
const ShortLivedMargin = time.Minute

// Hooks lets the caller observe the refresher, for health and metrics. Any
// field may be nil. Hooks run on the refresher's goroutine and must not
// block.
type Hooks struct {
	// Exchanged follows every exchange attempt, with its duration.
	Exchanged func(d time.Duration, err error)
	// Stored follows every successful store; changed reports whether the
	// token on disk changed.
	Stored func(tok exchange.Token, changed bool)
	// StoreFailed follows a store that failed after a good exchange.
	StoreFailed func(err error)
	// Waiting is called before each wait with the time the wait ends.
	Waiting func(until time.Time)
}

// Refresher runs exchanges and stores their tokens. Set the fields before
// calling Run or Once; a Refresher is not for use by more than one goroutine.
type Refresher struct {
	// Exchanger obtains tokens. Required.
	Exchanger exchange.Exchanger
	// Store persists a token; changed reports whether it differs from the
	// one already stored. Required.
	Store func(tok exchange.Token) (changed bool, err error)
	// Interval is the refresh cadence; DefaultInterval when zero.
	Interval time.Duration
	// MaxBackoff caps the delay between failed attempts; DefaultMaxBackoff
	// when zero.
	MaxBackoff time.Duration
	// MinMargin, when positive, is how long before a token's expiry it is
	// replaced at the latest (see rule 1). Zero keeps the 80% rule alone.
	MinMargin time.Duration
	// Logger receives one line per event; slog.Default() when nil.
	Logger *slog.Logger
	// Hooks observe the refresher.
	Hooks Hooks
	// Now is the wall clock used for expiry; time.Now when nil.
	Now func() time.Time
	// Rand returns a number in [0, 1) for jitter; math/rand when nil.
	Rand func() float64
	// Verify, when set, reports whether tok, the token stored last, is
	// still in place (rule 4); its error says what became of it.
	Verify func(tok exchange.Token) error
	// VerifyEvery is the period of Verify; DefaultVerifyEvery when zero.
	VerifyEvery time.Duration
	// Recheck, when set, asks a waiting Run to call Verify now, e.g. on a
	// filesystem event in the token's directory. Sends may be coalesced.
	Recheck <-chan struct{}
	// OnDemand, when set, carries requests for an exchange now (rule 5).
	OnDemand *OnDemand

	failures  int
	held      time.Time // expiry of the token stored last; zero when unknown
	lastStart time.Time // when the last exchange started (monotonic)
	requests  pending   // on-demand requests the next exchange answers
	// lastChanged reports whether the last attempt changed the token.
	lastChanged bool
}

// Run keeps the token fresh until ctx ends, then returns nil. It never
// returns because exchanges or stores fail: it logs and retries.
func (r *Refresher) Run(ctx context.Context) error {
	b := r.newBackoff()
	for {
		tok, err := r.attempt(ctx)
		r.requests.answer(Result{Changed: err == nil && r.lastChanged, Fingerprint: fingerprint(tok), Err: err})
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		var wallDue time.Time
		var stored *exchange.Token
		if err == nil {
			b.Reset()
			delay, wallDue = r.nextRefresh(tok)
			stored = &tok
		} else {
			delay = r.retryDelay(b, err)
			r.logFailure(err, delay)
		}
		if !r.wait(ctx, delay, wallDue, stored) {
			return nil
		}
	}
}

// Once obtains and stores one token, retrying retryable failures with
// backoff until ctx ends (set a deadline on it). It returns at once on a
// permanent failure, and gives up early when the next retry would fall after
// ctx's deadline. The error wraps the last failure, and the one before it
// when the deadline cut the last attempt short.
func (r *Refresher) Once(ctx context.Context) (exchange.Token, error) {
	b := r.newBackoff()
	var prev error
	for {
		tok, err := r.attempt(ctx)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			if prev != nil {
				// The deadline cut an attempt short; the failure before
				// it says why there is no token.
				return exchange.Token{}, fmt.Errorf("no token before the deadline: %w (the attempt before: %w)", err, prev)
			}
			return exchange.Token{}, fmt.Errorf("no token before the deadline: %w", err)
		}
		prev = err
		if !exchange.Retryable(err) {
			return exchange.Token{}, err
		}
		delay := r.retryDelay(b, err)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return exchange.Token{}, fmt.Errorf("no token before the deadline (next retry would be in %s): %w", delay.Round(time.Millisecond), err)
		}
		r.logFailure(err, delay)
		if !r.wait(ctx, delay, time.Time{}, nil) {
			return exchange.Token{}, fmt.Errorf("no token before the deadline: %w", err)
		}
	}
}

// attempt runs one exchange and stores its token.
func (r *Refresher) attempt(ctx context.Context) (exchange.Token, error) {
	start := time.Now()
	r.lastStart = start
	r.lastChanged = false
	tok, err := r.Exchanger.Exchange(ctx)
	if h := r.Hooks.Exchanged; h != nil {
		h(time.Since(start), err)
	}
	if err != nil {
		return exchange.Token{}, err
	}
	changed, err := r.Store(tok)
	if err != nil {
		if h := r.Hooks.StoreFailed; h != nil {
			h(err)
		}
		return exchange.Token{}, fmt.Errorf("storing the token: %w", err)
	}
	if h := r.Hooks.Stored; h != nil {
		h(tok, changed)
	}
	r.logSuccess(tok, changed)
	r.lastChanged = changed
	r.failures = 0
	r.held = tok.Expiry
	return tok, nil
}

// nextRefresh applies rule 1: the delay until the next exchange, and the
// wall time by which it is due when the token's expiry is known.
func (r *Refresher) nextRefresh(tok exchange.Token) (time.Duration, time.Time) {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	delay := time.Duration(float64(interval) * (1 - intervalJitter*r.rand()))
	var wallDue time.Time
	if !tok.Expiry.IsZero() {
		now := r.now()
		remaining := tok.Expiry.Sub(now)
		ahead := time.Duration(float64(remaining) * lifetimeFraction)
		if r.MinMargin > 0 {
			ahead = max(min(ahead, remaining-r.MinMargin), remaining/2)
		}
		wallDue = now.Round(0).Add(ahead)
		delay = min(delay, ahead)
	}
	return max(delay, minDelay), wallDue
}

// retryDelay applies rule 2.
func (r *Refresher) retryDelay(b *backoff.ExponentialBackOff, err error) time.Duration {
	delay := min(b.NextBackOff(), b.MaxInterval)
	if !r.held.IsZero() {
		if left := r.held.Sub(r.now()); left > 0 {
			delay = min(delay, max(left/2, minDelay))
		}
	}
	if after, ok := exchange.RetryAfter(err); ok {
		delay = max(delay, min(after, maxRetryAfter))
	}
	return delay
}

// wait applies rules 3 and 4 (the latter when stored is the token just
// stored). It reports false when ctx ended first.
func (r *Refresher) wait(ctx context.Context, delay time.Duration, wallDue time.Time, stored *exchange.Token) bool {
	verify := stored != nil && r.Verify != nil
	every := r.VerifyEvery
	if every <= 0 {
		every = DefaultVerifyEvery
	}
	deadline := time.Now().Add(delay)
	if h := r.Hooks.Waiting; h != nil {
		h(deadline)
	}
	for {
		remaining := time.Until(deadline)
		if !wallDue.IsZero() {
			remaining = min(remaining, wallDue.Sub(r.now().Round(0)))
		}
		if remaining <= 0 {
			return true
		}
		if !wallDue.IsZero() {
			remaining = min(remaining, wallCheck)
		}
		if verify {
			remaining = min(remaining, every)
		}
		t := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-r.Recheck:
			t.Stop()
		case req := <-r.onDemand():
			t.Stop()
			r.requests = append(r.requests, req)
			// An exchange now, but never sooner than the floor after the
			// last one began.
			if floor := r.lastStart.Add(minDelay); floor.Before(deadline) {
				deadline = floor
			}
			wallDue = time.Time{}
			continue
		}
		if verify && !r.restore(*stored) {
			return true
		}
	}
}

// restore applies rule 4 to tok, the token stored last: it reports whether
// tok is in place, writing it again when Verify finds it gone.
func (r *Refresher) restore(tok exchange.Token) bool {
	lost := r.Verify(tok)
	if lost == nil {
		return true
	}
	log := r.logger().With(slog.String("fingerprint", tok.Value.Fingerprint()), slog.String("reason", lost.Error()))
	if _, err := r.Store(tok); err != nil {
		if h := r.Hooks.StoreFailed; h != nil {
			h(err)
		}
		log.Warn("token file lost and could not be written again, refreshing now", slog.String("error", err.Error()))
		return false
	}
	if h := r.Hooks.Stored; h != nil {
		h(tok, true)
	}
	log.Warn("token file lost, wrote the stored token again")
	return true
}

// onDemand returns the channel of on-demand requests; nil (never ready)
// when OnDemand is unset.
func (r *Refresher) onDemand() <-chan chan<- Result {
	if r.OnDemand == nil {
		return nil
	}
	return r.OnDemand.reqs
}

func fingerprint(tok exchange.Token) string {
	if tok.Value.Reveal() == "" {
		return ""
	}
	return tok.Value.Fingerprint()
}

func (r *Refresher) newBackoff() *backoff.ExponentialBackOff {
	maxB := r.MaxBackoff
	if maxB <= 0 {
		maxB = DefaultMaxBackoff
	}
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(min(initialBackoff, maxB)),
		backoff.WithMaxInterval(maxB),
		backoff.WithMaxElapsedTime(0),
		backoff.WithRandomizationFactor(0.2),
		backoff.WithMultiplier(2),
	)
}

func (r *Refresher) logSuccess(tok exchange.Token, changed bool) {
	log := r.logger()
	attrs := []any{slog.String("fingerprint", tok.Value.Fingerprint())}
	if !tok.Expiry.IsZero() {
		attrs = append(attrs,
			slog.Time("expires_at", tok.Expiry),
			slog.Duration("expires_in", tok.Expiry.Sub(r.now()).Round(time.Second)),
			slog.String("expiry_source", tok.ExpirySource))
	}
	if r.failures > 0 {
		attrs = append(attrs, slog.Int("after_failures", r.failures))
	}
	if changed {
		log.Info("token updated", attrs...)
	} else {
		log.Debug("token unchanged", attrs...)
	}
}

func (r *Refresher) logFailure(err error, delay time.Duration) {
	r.failures++
	attrs := []any{
		slog.String("error", err.Error()),
		slog.Int("consecutive_failures", r.failures),
		slog.Duration("retry_in", delay.Round(time.Millisecond)),
	}
	if code := exchange.StatusCode(err); code != 0 {
		attrs = append(attrs, slog.Int("status", code))
	}
	level := slog.LevelWarn
	if !exchange.Retryable(err) && !errors.Is(err, context.Canceled) {
		level = slog.LevelError
	}
	r.logger().Log(context.Background(), level, "exchange failed, will retry", attrs...)
}

func (r *Refresher) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

func (r *Refresher) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Refresher) rand() float64 {
	if r.Rand == nil {
		return rand.Float64()
	}
	return r.Rand()
}
