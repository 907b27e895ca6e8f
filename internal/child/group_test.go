package child

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestRestartKillsTheGroupAfterGrace: a process of the child's group that
// ignores the stop signal is killed once the grace period is over, though
// the group's leader exited at once; it does not survive the restarts.
func TestRestartKillsTheGroupAfterGrace(t *testing.T) {
	h := newHarness(t, "group", PolicyRestart, "GRANDCHILD=stubborn")
	h.sup.Grace = time.Millisecond
	h.write("tok")
	close(h.ready)
	h.run(t.Context())
	h.next("start")
	stubborn := pidOf(t, h.next("grandchild"))
	for range 2 {
		h.changes <- struct{}{}
		if ev := h.next("signal", "start"); ev[0] == "signal" { // unless the SIGKILL came first
			h.next("start")
		}
		testkit.AwaitExit(t, stubborn)
		gone(t, stubborn) // and reaped: re-parented to the supervisor
		stubborn = pidOf(t, h.next("grandchild"))
	}
	h.sigs <- syscall.SIGTERM
	if code, err := h.wait(); err != nil || code != 64+15 && code != 128+9 {
		t.Errorf("Run = %d, %v; want %d, or %d when the SIGKILL came first", code, err, 64+15, 128+9)
	}
	gone(t, stubborn)
}

// TestStopsEndTheWholeGroup: every way the child stops ends its whole
// process group before Run returns: a forwarded signal and the end of ctx
// reach every member (the grace period is an hour, so only the signal can
// end a polite member in time), a member that ignores them is killed after
// the grace period, and what a child that exits on its own leaves in its
// group is stopped too.
func TestStopsEndTheWholeGroup(t *testing.T) {
	for _, tc := range []struct {
		name, mode, grandchild string
		grace                  time.Duration
		stop                   func(h *harness, cancel context.CancelFunc)
		want                   int
	}{
		{"forwarded SIGTERM", "group", "polite", time.Hour, func(h *harness, _ context.CancelFunc) { h.sigs <- syscall.SIGTERM }, 64 + 15},
		{"forwarded SIGINT", "group", "polite", time.Hour, func(h *harness, _ context.CancelFunc) { h.sigs <- syscall.SIGINT }, 64 + 2},
		{"end of ctx", "group", "polite", time.Hour, func(_ *harness, cancel context.CancelFunc) { cancel() }, 64 + 15},
		{"stubborn member, forwarded SIGTERM", "group", "stubborn", time.Millisecond, func(h *harness, _ context.CancelFunc) { h.sigs <- syscall.SIGTERM }, 64 + 15},
		{"stubborn member, end of ctx", "group", "stubborn", time.Millisecond, func(_ *harness, cancel context.CancelFunc) { cancel() }, 64 + 15},
		{"leader exited on its own", "leave", "polite", time.Hour, nil, 0},
		{"leader exited on its own, stubborn member", "leave", "stubborn", time.Millisecond, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mode, PolicyNone, "GRANDCHILD="+tc.grandchild)
			h.sup.Grace = tc.grace
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			h.write("tok")
			close(h.ready)
			h.run(ctx)
			leader := pidOf(t, h.next("start"))
			member := pidOf(t, h.next("grandchild"))
			if tc.stop != nil {
				tc.stop(h, cancel)
			}
			// With a grace period of 1ms, the SIGKILL may come before the
			// leader handles the signal.
			if code, err := h.wait(); err != nil || code != tc.want && !(tc.grace == time.Millisecond && code == 128+9) {
				t.Errorf("Run = %d, %v; want %d", code, err, tc.want)
			}
			gone(t, leader)
			gone(t, member)
		})
	}
}
