package refresher

import (
	"context"
	"time"
)

// wait applies rules 5 and 6. It reports false when ctx ended first.
func (r *Refresher) wait(ctx context.Context, delay time.Duration, wallDue time.Time) bool {
	deadline := time.Now().Add(delay)
	r.waiting(deadline)
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
		t := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
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
		}
	}
}

// onDemand returns the channel of on-demand requests; nil (never ready)
// when OnDemand is unset.
func (r *Refresher) onDemand() <-chan chan<- Result {
	if r.OnDemand == nil {
		return nil
	}
	return r.OnDemand.reqs
}
