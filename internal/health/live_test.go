package health

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestLiveIgnoresWallClockJumps: liveness is judged on the monotonic
// clock. A wall clock stepped forward (NTP, a resumed node) must not make
// a waiting refresh loop look stuck, and one stepped back must not hide a
// loop that is.
func TestLiveIgnoresWallClockJumps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var offset atomic.Int64
		wall := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		m := New(testDir(t).Verified, wall)

		m.Waiting(time.Now().Add(5 * time.Minute))
		time.Sleep(time.Minute)
		offset.Store(int64(10 * time.Minute))
		if err := m.live(); err != nil {
			t.Fatalf("wall clock 10 minutes ahead during a 5-minute wait: %v", err)
		}

		// The loop wedges after its wait: overdue by more than the grace.
		time.Sleep(4*time.Minute + livenessGrace + time.Second)
		offset.Store(-int64(time.Hour))
		if err := m.live(); err == nil {
			t.Fatal("a loop overdue by more than the grace is live because the wall clock went back")
		}
		m.Waiting(time.Now().Add(time.Second))
		if err := m.live(); err != nil {
			t.Fatalf("after the loop came back: %v", err)
		}
	})
}
