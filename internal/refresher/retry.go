package refresher

import (
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/exchange"
)

// retryDelay applies rule 3: the delay after a failed attempt, b being
// the backoff of this run of failures.
func (r *Refresher) retryDelay(b *backoff.ExponentialBackOff, err error) time.Duration {
	after, asked := exchange.RetryAfter(err)
	exp := r.held.Expiry
	var left time.Duration
	if !exp.IsZero() {
		left = exp.Sub(r.now())
	}
	// A 429 while a token is held: the issuer is up, but has no capacity
	// for this request now.
	busy := !exp.IsZero() && exchange.StatusCode(err) == http.StatusTooManyRequests
	if busy && left <= 0 && !r.sched.resetFor.Equal(exp) {
		b.Reset()
		r.sched.resetFor = exp
	}
	delay := min(b.NextBackOff(), b.MaxInterval)
	switch {
	case busy:
		if left > 0 {
			delay = min(max(delay, after), r.reserve(left))
		}
		return max(delay, busyGap+time.Duration(r.rand()*float64(2*busyGap)), r.floor())
	case !exp.IsZero():
		// At most half the life left, but at least a gap drawn from the
		// second half of the band's width.
		if left > 0 {
			delay = min(delay, left/2)
		}
		lo, hi := r.band(r.sched.fullLife)
		delay = max(delay, time.Duration(float64(min(hi-lo, b.MaxInterval))*(0.5+0.5*r.rand())))
		if asked && left > 0 {
			after = min(after, r.reserve(left))
		}
	}
	if asked {
		delay = max(delay, min(after, maxRetryAfter))
	}
	return max(delay, r.floor())
}

// busyGap is the least spacing of retries after a 429, at random up to
// three times it.
const busyGap = 2 * time.Second

// reserve returns how long a retry may wait at most while the held token
// has left to live: a random fraction of it, so that a pod keeps time for
// more than one attempt before expiry.
func (r *Refresher) reserve(left time.Duration) time.Duration {
	return time.Duration(float64(left) * (0.25 + 0.5*r.rand()))
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
