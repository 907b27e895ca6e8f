package wallalarm

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestAlarmDeliversOnTheWallClock: an alarm for a time already past
// delivers at once; one a few milliseconds ahead delivers, and not before
// the wall clock has reached its time (the kernel's CLOCK_REALTIME, read
// here through time.Now); one an hour ahead has not delivered meanwhile.
func TestAlarmDeliversOnTheWallClock(t *testing.T) {
	far := armed(t, time.Now().Add(time.Hour))
	testkit.Await(t, "the alarm for a past time", armed(t, time.Now().Add(-time.Minute)))

	at := time.Now().Add(20 * time.Millisecond)
	testkit.Await(t, "the alarm 20 ms ahead", armed(t, at))
	if now := time.Now().Round(0); now.Before(at) {
		t.Fatalf("delivered at %s, before its time %s", now.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
	}
	select {
	case <-far:
		t.Fatal("the alarm an hour ahead delivered")
	default:
	}
}

// TestStopEndsTheAlarm: stop returns (its watcher ended) whether the alarm
// delivered or not, and a stopped alarm does not deliver.
func TestStopEndsTheAlarm(t *testing.T) {
	fired, stop, err := New(time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Await(t, "the alarm", fired)
	stop()

	waiting, stop, err := New(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case <-waiting:
		t.Fatal("a stopped alarm delivered")
	default:
	}
}

// armed arms an alarm for at, stopped when the test ends, and returns its
// channel.
func armed(t *testing.T, at time.Time) <-chan struct{} {
	t.Helper()
	c, stop, err := New(at)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(stop)
	return c
}

// reads is the timerfd as watch sees it: each Read returns the next error
// the test sends (nil: the timer expired), and os.ErrClosed once the
// channel is closed (stop closed the file).
type reads chan error

func (r reads) Read(p []byte) (int, error) {
	err, ok := <-r
	switch {
	case !ok:
		return 0, os.ErrClosed
	case err != nil:
		return 0, err
	}
	return len(p), nil
}

// TestWatchRearmsWhenTheClockIsSet: each cancellation of the timer (the
// wall clock was set, or the node resumed, which the kernel reports as
// ECANCELED) is delivered and the timer armed again for the same time;
// its expiry is delivered and ends the watch. A failed re-arm, or the
// file closed, ends it too.
func TestWatchRearmsWhenTheClockIsSet(t *testing.T) {
	t.Run("set twice, then due", func(t *testing.T) {
		a, r, rearmed, done := watching(t, nil)
		for range 2 {
			r <- syscall.ECANCELED
			testkit.Await(t, "the delivery of a cancellation", a)
			testkit.Await(t, "the timer armed again", rearmed)
		}
		r <- nil
		testkit.Await(t, "the delivery of the expiry", a)
		testkit.Await(t, "the watch to end", done)
	})
	t.Run("re-arm fails", func(t *testing.T) {
		a, r, rearmed, done := watching(t, errors.New("closed"))
		r <- syscall.ECANCELED
		testkit.Await(t, "the delivery of a cancellation", a)
		testkit.Await(t, "the re-arm", rearmed)
		testkit.Await(t, "the watch to end", done)
	})
	t.Run("closed", func(t *testing.T) {
		a, r, _, done := watching(t, nil)
		close(r)
		testkit.Await(t, "the watch to end", done)
		select {
		case <-a:
			t.Error("a closed alarm delivered")
		default:
		}
	})
}

// watching starts watch on a scripted timerfd whose re-arms are reported
// on rearmed and fail with rearmErr.
func watching(t *testing.T, rearmErr error) (a chan struct{}, r reads, rearmed chan struct{}, done chan struct{}) {
	a, r = make(chan struct{}, 1), make(reads)
	rearmed, done = make(chan struct{}, 4), make(chan struct{})
	go watch(r, a, func() error { rearmed <- struct{}{}; return rearmErr }, done)
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			close(r)
			<-done
		}
	})
	return a, r, rearmed, done
}

// TestAlarmWhenTheClockIsSet is the kernel's part of a resume from
// suspend, which Linux reports to a timerfd as a set of the wall clock:
// the alarm an hour ahead delivers as soon as the clock is stepped, and,
// armed again, once more when it is stepped back. It steps this node's
// wall clock by one microsecond and back (adjtimex ADJ_SETOFFSET, which
// needs CAP_SYS_TIME), so it runs only when asked:
// TOKEND_TEST_STEP_CLOCK=1 go test ./internal/wallalarm.
func TestAlarmWhenTheClockIsSet(t *testing.T) {
	if os.Getenv("TOKEND_TEST_STEP_CLOCK") != "1" {
		t.Skip("steps the node's wall clock by 1 µs and back; set TOKEND_TEST_STEP_CLOCK=1 (and have CAP_SYS_TIME) to run")
	}
	a := armed(t, time.Now().Add(time.Hour))
	stepClock(t, unix.Timeval{Usec: 1})
	testkit.Await(t, "the alarm after the clock was stepped forward", a)
	stepClock(t, unix.Timeval{Sec: -1, Usec: 999_999})
	testkit.Await(t, "the alarm, armed again, after the clock was stepped back", a)
}

// stepClock steps the wall clock by by.
func stepClock(t *testing.T, by unix.Timeval) {
	t.Helper()
	tx := unix.Timex{Modes: unix.ADJ_SETOFFSET, Time: by}
	if _, err := unix.Adjtimex(&tx); err != nil {
		t.Fatalf("stepping the wall clock by %+v: %v", by, err)
	}
}
