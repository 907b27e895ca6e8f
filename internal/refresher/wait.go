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
	alarm, stop := r.armWall(wallDue)
	defer func() { stop() }()
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
		t := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-alarm: // the wall clock reached wallDue, or jumped: look
			t.Stop()
		case req := <-reqs:
			t.Stop()
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

// armWall arms WallAlarm for due and returns its channel and its stop. The
// channel is nil (never ready) when due is zero, WallAlarm unset, or arming
// failed (logged once; wait then checks the wall clock itself).
func (r *Refresher) armWall(due time.Time) (<-chan struct{}, func()) {
	none := func() {}
	if due.IsZero() || r.WallAlarm == nil {
		return nil, none
	}
	c, stop, err := r.WallAlarm(due)
	if err != nil {
		r.warnOnce("wall-alarm", "cannot set an alarm on the wall clock; checking it once a minute instead, so a node that resumes from suspend may refresh up to a minute late",
			slog.String("error", err.Error()))
		return nil, none
	}
	return c, stop
}
