package child

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/proc"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

func TestStartsOnlyOnceTheTokenIsReady(t *testing.T) {
	h := newHarness(t, "serve", PolicyNone)
	var readied atomic.Bool
	h.starting = func() {
		if !readied.Load() {
			t.Error("child started before Ready")
		}
	}
	h.run(t.Context())
	h.write("tok-1")
	readied.Store(true)
	close(h.ready)
	ev := h.next("start")
	if want := secret.Fingerprint("tok-1"); ev[2] != want || ev[3] != want {
		t.Errorf("child saw env %s file %s, want %s for both", ev[2], ev[3], want)
	}
	h.sigs <- syscall.SIGTERM
	h.next("signal")
	if code, err := h.wait(); err != nil || code != 64+15 {
		t.Errorf("Run = %d, %v; want %d", code, err, 64+15)
	}
	gone(t, pidOf(t, ev))
}

func TestSignalBeforeTheTokenStartsNothing(t *testing.T) {
	h := newHarness(t, "serve", PolicyNone)
	h.run(t.Context())
	h.sigs <- syscall.SIGINT
	code, err := h.wait()
	if !errors.Is(err, ErrNotStarted) || code != 128+int(syscall.SIGINT) {
		t.Errorf("Run = %d, %v; want %d, ErrNotStarted", code, err, 128+int(syscall.SIGINT))
	}
	if n := h.starts(); n != 0 {
		t.Errorf("started %d times", n)
	}
}

func TestRestartPolicyRestartsOncePerChange(t *testing.T) {
	h := newHarness(t, "serve", PolicyRestart)
	h.write("tok-0")
	close(h.ready)
	h.run(t.Context())
	prev := pidOf(t, h.next("start"))
	for i := 1; i <= 3; i++ {
		tok := fmt.Sprintf("tok-%d", i)
		h.write(tok)
		h.changes <- struct{}{}
		if ev := h.next("signal"); ev[1] != "terminated" {
			t.Fatalf("old child got %q, want terminated", ev)
		}
		ev := h.next("start")
		if ev[2] != secret.Fingerprint(tok) {
			t.Errorf("restart %d: child's env token %s, want %s", i, ev[2], secret.Fingerprint(tok))
		}
		gone(t, prev)
		prev = pidOf(t, ev)
	}
	if n := h.starts(); n != 4 {
		t.Errorf("%d starts for 3 changes, want 4", n)
	}
	h.sigs <- syscall.SIGINT
	h.next("signal")
	if code, _ := h.wait(); code != 64+int(syscall.SIGINT) {
		t.Errorf("exit code %d, want %d", code, 64+int(syscall.SIGINT))
	}
	gone(t, prev)
}

func TestSignalPolicySignalsWithoutRestart(t *testing.T) {
	h := newHarness(t, "serve", PolicySignal)
	h.write("tok-0")
	close(h.ready)
	h.run(t.Context())
	h.next("start")
	for range 2 {
		h.changes <- struct{}{}
		if ev := h.next("signal"); ev[1] != "hangup" {
			t.Fatalf("child got %q, want hangup", ev)
		}
	}
	h.sigs <- syscall.SIGTERM
	h.next("signal")
	h.wait()
	if n := h.starts(); n != 1 {
		t.Errorf("%d starts, want one", n)
	}
}

func TestExitStatusPropagates(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		env        []string
		stop       func(h *harness, cancel context.CancelFunc)
		grace      time.Duration
		want       int
	}{
		{"exit status", "exit", []string{"HELPER_CODE=3"}, nil, time.Hour, 3},
		// A grace period that cannot end first: the child's own exit on
		// the forwarded signal is the event, however loaded the machine.
		{"forwarded SIGTERM", "serve", nil, func(h *harness, _ context.CancelFunc) { h.sigs <- syscall.SIGTERM }, time.Hour, 64 + 15},
		{"killed after the grace period", "stubborn", nil, func(_ *harness, cancel context.CancelFunc) { cancel() }, time.Millisecond, 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mode, PolicyNone, tc.env...)
			h.sup.Grace = tc.grace
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			h.write("tok")
			close(h.ready)
			h.run(ctx)
			pid := pidOf(t, h.next("start"))
			if tc.stop != nil {
				tc.stop(h, cancel)
			}
			if code, err := h.wait(); err != nil || code != tc.want {
				t.Errorf("Run = %d, %v; want %d", code, err, tc.want)
			}
			gone(t, pid)
		})
	}
}

func TestMissingCommandIs127(t *testing.T) {
	h := newHarness(t, "serve", PolicyNone)
	h.sup.Argv = []string{"tokend-no-such-command"}
	h.write("tok")
	close(h.ready)
	h.run(t.Context())
	if code, err := h.wait(); code != 127 || err == nil {
		t.Errorf("Run = %d, %v; want 127 and an error", code, err)
	}
}

func TestReapsOrphansAsSubreaper(t *testing.T) {
	// Run makes this test process a child subreaper, standing in for PID
	// 1: the grandchild is re-parented here when its parent exits.
	h := newHarness(t, "orphan", PolicyNone)
	h.write("tok")
	close(h.ready)
	h.run(t.Context())
	h.next("start")                     // the child
	middle := pidOf(t, h.next("start")) // the middle process
	var orphan int
	for orphan == 0 { // the grandchild's start and the middle's report, in either order
		ev := <-h.events
		if ev[0] == "grandchild" {
			orphan = pidOf(t, ev)
		}
	}
	testkit.AwaitExit(t, middle)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", orphan))
	if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); err != nil || f[1] != strconv.Itoa(os.Getpid()) {
		t.Fatalf("orphan's stat %q, %v; want this process its parent", stat, err)
	}
	mustKill(t, orphan, syscall.SIGTERM)
	for { // until this process has reaped it
		reaped := proc.Reaped()
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", orphan)); err != nil {
			break
		}
		testkit.Await(t, "a reap", reaped)
	}
	h.sigs <- syscall.SIGTERM
	if code, err := h.wait(); err != nil || code != 64+15 {
		t.Errorf("Run = %d, %v", code, err)
	}
}

func mustKill(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
}

func TestRestartDelayBacksOffShortRuns(t *testing.T) {
	now := time.Unix(1000, 0)
	r := &Supervisor{Now: func() time.Time { return now }, RestartBackoff: backoff.NewConstantBackOff(7 * time.Second)}
	r.lastStart = now.Add(-time.Second)
	if d := r.restartDelay(); d != 7*time.Second {
		t.Errorf("a child up 1s restarts after %s, want 7s", d)
	}
	r.lastStart = now.Add(-time.Minute)
	if d := r.restartDelay(); d != 0 {
		t.Errorf("a child up 1m restarts after %s, want at once", d)
	}
}

func TestNilStdinIsDevNull(t *testing.T) {
	// A shell, not the Go helper: the Go runtime would itself open
	// /dev/null over a closed standard descriptor.
	h := newHarness(t, "serve", PolicyNone)
	h.sup.Argv = []string{"/bin/sh", "-c", `if [ -e /proc/self/fd/0 ]; then echo stdin open; else echo stdin closed; fi`}
	h.write("tok")
	close(h.ready)
	h.run(t.Context())
	if ev := h.next("stdin"); ev[1] != "open" {
		t.Errorf("child's stdin is %s; want /dev/null", ev[1])
	}
	if code, err := h.wait(); code != 0 || err != nil {
		t.Errorf("Run = %d, %v", code, err)
	}
}

// countingBackOff delays every restart by 1 ms and counts the delays.
type countingBackOff struct{ n atomic.Int32 }

func (c *countingBackOff) NextBackOff() time.Duration { c.n.Add(1); return time.Millisecond }
func (c *countingBackOff) Reset()                     {}

func TestQuickRestartsAreBackedOff(t *testing.T) {
	h := newHarness(t, "serve", PolicyRestart)
	b := &countingBackOff{}
	h.sup.RestartBackoff = b
	h.sup.Now = func() time.Time { return time.Unix(0, 0) } // every run counts as short
	h.write("tok")
	close(h.ready)
	h.run(t.Context())
	h.next("start")
	for range 3 {
		h.changes <- struct{}{}
		h.next("signal")
		h.next("start") // after the backoff's delay
	}
	if n := b.n.Load(); n != 3 {
		t.Errorf("%d backoff delays for 3 quick restarts, want 3", n)
	}
	h.sigs <- syscall.SIGTERM
	h.next("signal")
	h.wait()
}
