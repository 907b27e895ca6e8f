package wallalarm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// New arms an alarm for the wall-clock time at; an at already past
// delivers at once. c receives when the wall clock reaches at, and also
// each time the wall clock is set (or the node resumes) before then: a
// receiver compares the wall clock with at and waits on c again while it
// is early. c has a buffer of one and the alarm never blocks on it:
// deliveries not yet taken merge into one. stop disarms the alarm and
// returns once it can no longer deliver; call it once, when the alarm is
// no longer needed. New fails when the system refuses a timerfd (a seccomp
// profile, the process's file descriptors exhausted); callers then check
// the wall clock on a timer of their own.
func New(at time.Time) (c <-chan struct{}, stop func(), err error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("wallalarm: timerfd_create: %w", err)
	}
	// A non-blocking descriptor makes os.NewFile register it with the
	// runtime's poller: a Read parks the goroutine, not a thread.
	f := os.NewFile(uintptr(fd), "timerfd")
	if err := arm(f, at); err != nil {
		f.Close()
		return nil, nil, err
	}
	ch, done := make(chan struct{}, 1), make(chan struct{})
	go watch(f, ch, func() error { return arm(f, at) }, done)
	return ch, func() {
		f.Close() // ends the Read in watch
		<-done
	}, nil
}

// arm sets f to expire once at the wall-clock time at, and to be
// cancelled by a set of the clock.
func arm(f *os.File, at time.Time) error {
	spec := unix.ItimerSpec{Value: unix.Timespec{Sec: at.Unix(), Nsec: int64(at.Nanosecond())}}
	if spec.Value.Sec <= 0 && spec.Value.Nsec == 0 {
		spec.Value.Nsec = 1 // zero would disarm it
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("wallalarm: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil)
	}); err != nil {
		return fmt.Errorf("wallalarm: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("wallalarm: timerfd_settime: %w", serr)
	}
	return nil
}

// watch delivers on c, without blocking, each expiry or cancellation f's
// reads report until f is closed. An expiry ends it (one-shot); a
// cancellation (ECANCELED: the clock was set, or the node resumed) rearms
// the timer with rearm.
func watch(f io.Reader, c chan<- struct{}, rearm func() error, done chan<- struct{}) {
	defer close(done)
	var buf [8]byte // the count of expiries
	for {
		_, err := f.Read(buf[:])
		if err != nil && !errors.Is(err, syscall.ECANCELED) {
			return // closed by stop
		}
		select {
		case c <- struct{}{}:
		default:
		}
		if err == nil || rearm() != nil {
			return // expired; or the re-arm failed (closed meanwhile, or unusable: the caller's own timer still runs)
		}
	}
}
