package refresher

import (
	"context"
	"log/slog"
	"time"
)

// wait applies rules 5 and 6. It reports false when ctx ended first.
func (r *Refresher) wait(ctx context.Context, delay time.Duration, wallDue time.Time) bool {
	deadline := time.Now().Add(delay)
	var reqs chan chan<- Result // nil, never ready, without OnDemand
	if r.OnDemand != nil {
		reqs = r.OnDemand.reqs
	}
	r.tell(func(o Observer) { o.Waiting(deadline) })
	var alarm <-chan struct{} // nil, never ready, without a wall alarm
	stop := func() {}
	if !wallDue.IsZero() && r.WallAlarm != nil {
		c, s, err := r.WallAlarm(wallDue)
		if err != nil {
			r.warnOnce("wall-alarm", "cannot set an alarm on the wall clock; checking it once a minute instead, so a node that resumes from suspend may refresh up to a minute late",
				slog.String("error", err.Error()))
		} else {
			alarm, stop = c, s
		}
	}
	t := time.NewTimer(delay)
	defer func() { t.Stop(); stop() }()
	for {
		remaining := time.Until(deadline)
		if !wallDue.IsZero() {
			remaining = min(remaining, wallDue.Sub(r.now().Round(0)))
		}
		if remaining <= 0 {
			return true
		}
		if !wallDue.IsZero() && alarm == nil {
			remaining = min(remaining, wallCheck)
		}
		t.Reset(remaining) // drops a stale tick (Go 1.23 timers)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		case <-alarm: // the wall clock reached wallDue, or jumped: look
		case req := <-reqs:
			r.requests = append(r.requests, req)
			r.aimed = false // early: its answer says nothing of the issuer's reuse
			// An exchange now, but never sooner than the floor after the
			// last one began.
			if floor := r.lastStart.Add(r.floor()); floor.Before(deadline) {
				deadline = floor
			}
			wallDue = time.Time{}
			stop()
			alarm, stop = nil, func() {}
		}
	}
}
