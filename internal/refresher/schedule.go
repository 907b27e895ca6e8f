package refresher

import (
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/exchange"
)

// Schedule constants; the package doc explains the rules they serve.
const (
	// minDelay is the floor between two exchanges on every path.
	minDelay = 500 * time.Millisecond
	// aheadFraction of a new token's remaining life is the least margin
	// kept before its expiry (the kubelet's 80% rule for projected tokens).
	aheadFraction = 0.2
	// aheadSpread widens that margin by up to this fraction, at random.
	aheadSpread = 0.1
	// A learned reuse window w is aimed at uniformly between
	// windowLow*w and windowHigh*w before expiry.
	windowLow  = 1.0 / 6
	windowHigh = 0.9
	// shortLife is the remaining life under which a token is warned about.
	shortLife = 5 * time.Second
)

// floor is the least delay between two exchanges: minDelay, or the
// interval when the operator chose a shorter one.
func (r *Refresher) floor() time.Duration {
	if r.Interval > 0 && r.Interval < minDelay {
		return r.Interval
	}
	return minDelay
}

// learn updates the reuse window from one successful exchange (rule 2):
// left is how long the held token had to live when the exchange began
// (zero when unknown), same whether the issuer returned that token again.
// Call it before nextRefresh plans the next exchange.
func (r *Refresher) learn(tok exchange.Token, left time.Duration, same bool) {
	switch {
	case same && r.aimed && !tok.Expiry.IsZero() && left > 0:
		// Only an exchange at the refresh-ahead point teaches anything:
		// reuse at an interval step, long before expiry, is expected.
		if r.window == 0 || left < r.window {
			r.window = left
		}
	case !same && r.window > 0 && left >= r.window:
		// The issuer minted anew where it used to reuse: its rule changed.
		r.window = 0
	}
}

// nextRefresh applies rules 1, 2 and 4: the delay until the next exchange,
// and the wall time by which it is due when the token's expiry is known.
// While the refresh-ahead point is more than an interval away, the steps are
// placed so that a whole number of them reaches that point: a 15-minute
// token costs three exchanges at a 5-minute interval, not four.
func (r *Refresher) nextRefresh(tok exchange.Token) (time.Duration, time.Time) {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	delay := jittered(interval, r.rand())
	floor := r.floor()
	redraw := r.aimed
	r.aimed = false
	if tok.Expiry.IsZero() {
		if r.firstWait {
			delay = time.Duration(float64(delay) * (1 - 0.5*r.rand()))
			r.firstWait = false
		}
		return max(delay, floor), time.Time{}
	}
	now := r.now().Round(0)
	// The refresh-ahead point is drawn once per token, and again only
	// after an exchange there (or a later one) still left this token
	// held: interval steps then lead to one fixed point.
	if redraw || !r.aimFor.Equal(tok.Expiry) || !r.aimAt.After(now) {
		r.aimFor = tok.Expiry
		r.aimAt = tok.Expiry.Add(-r.margin(tok.Expiry.Sub(now)))
	}
	ahead := r.aimAt.Sub(now)
	if ahead > interval {
		// The interval bounds the gap between exchanges. Place the steps
		// back from the refresh-ahead point, one jittered interval apart,
		// so the last lands on that point instead of just before it, and
		// a pod's steps keep the point's randomness instead of
		// converging with the fleet's.
		steps := (ahead + interval - 1) / interval
		delay = min(ahead-(steps-1)*jittered(interval, r.rand()), interval)
		r.aimed = false
	} else {
		delay = ahead
		r.aimed = true
	}
	if r.firstWait {
		// Pods that start together (a rollout, a node's restart) would
		// keep in step for good: spread the first refresh over the
		// second half of its delay.
		delay = time.Duration(float64(delay) * (1 - 0.5*r.rand()))
		r.firstWait, r.aimed = false, false
	}
	delay = max(delay, floor)
	return delay, now.Add(delay)
}

// jittered returns d less up to intervalJitter of it, u being in [0, 1).
func jittered(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (1 - intervalJitter*u))
}

// margin draws how long before expiry the held token is replaced, left
// being its remaining life now: from the learned reuse window when there is
// one, else at least aheadFraction of the life it had when it arrived,
// widened at random. A token that lives less than twice that
// margin is replaced halfway through its life. nextRefresh applies the
// floor.
func (r *Refresher) margin(left time.Duration) time.Duration {
	u := r.rand()
	if r.window > 0 {
		w := float64(min(r.window, left))
		return time.Duration(w * (windowLow + u*(windowHigh-windowLow)))
	}
	life := max(r.life, left)
	lo := time.Duration(float64(life) * aheadFraction)
	m := lo + time.Duration(float64(lo)*aheadSpread*u)
	return min(m, life/2)
}

// retryDelay applies rule 3.
func (r *Refresher) retryDelay(b *backoff.ExponentialBackOff, err error) time.Duration {
	delay := min(b.NextBackOff(), b.MaxInterval)
	floor := r.floor()
	if !r.held.Expiry.IsZero() {
		if left := r.held.Expiry.Sub(r.now()); left > 0 {
			delay = min(delay, max(left/2, floor))
		}
	}
	if after, ok := exchange.RetryAfter(err); ok {
		delay = max(delay, min(after, maxRetryAfter))
	}
	return max(delay, floor)
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
