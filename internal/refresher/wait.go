package refresher

import (
	"context"
	"log/slog"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// wait applies rules 5, 6 and 7 (the latter when stored is the token just
// stored). It reports false when ctx ended first.
func (r *Refresher) wait(ctx context.Context, delay time.Duration, wallDue time.Time, stored *exchange.Token) bool {
	verify := stored != nil
	every := r.VerifyEvery
	if every <= 0 {
		every = DefaultVerifyEvery
	}
	deadline := time.Now().Add(delay)
	r.waiting(deadline)
	attention := r.Sink.Attention()
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
		case <-attention:
			t.Stop()
		case req := <-r.onDemand():
			t.Stop()
			r.requests = append(r.requests, req)
			r.aimed = false // early: its answer says nothing of the issuer's reuse
			// An exchange now, but never sooner than the floor after the
			// last one began.
			if floor := r.lastStart.Add(r.floor()); floor.Before(deadline) {
				deadline = floor
			}
			wallDue = time.Time{}
			continue
		}
		if verify && !r.restore(*stored) {
			r.aimed = false
			return true
		}
	}
}

// restore applies rule 6 to tok, the token stored last: it reports whether
// tok is in place, writing it again when Verify finds it gone.
func (r *Refresher) restore(tok exchange.Token) bool {
	lost := r.Sink.Verify(tok)
	if lost == nil {
		return true
	}
	log := r.logger().With(slog.String("fingerprint", tok.Value.Fingerprint()), slog.String("reason", lost.Error()))
	if _, err := r.Sink.Store(tok); err != nil {
		r.storeFailed(err)
		r.fail(err)
		log.Warn("token file lost and could not be written again, refreshing now", slog.String("error", err.Error()))
		return false
	}
	r.stored(tok, true)
	r.failures = 0
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
