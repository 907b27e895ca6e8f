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
// delivers at once. It fails when the system refuses a timerfd (a seccomp
// profile, the process's file descriptors exhausted); callers then check
// the wall clock on a timer of their own.
func New(at time.Time) (*Alarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wallalarm: timerfd_create: %w", err)
	}
	// A non-blocking descriptor makes os.NewFile register it with the
	// runtime's poller: a Read parks the goroutine, not a thread.
	f := os.NewFile(uintptr(fd), "timerfd")
	if err := arm(f, at); err != nil {
		f.Close()
		return nil, err
	}
	a := &Alarm{c: make(chan struct{}, 1)}
	done := make(chan struct{})
	go a.watch(f, func() error { return arm(f, at) }, done)
	a.stop = func() {
		f.Close() // ends the Read in watch
		<-done
	}
	return a, nil
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

// watch delivers each expiry or cancellation f's reads report until f is
// closed. An expiry ends it (one-shot); a cancellation (ECANCELED: the
// clock was set, or the node resumed) rearms the timer with rearm.
func (a *Alarm) watch(f io.Reader, rearm func() error, done chan<- struct{}) {
	defer close(done)
	var buf [8]byte // the count of expiries
	for {
		_, err := f.Read(buf[:])
		switch {
		case err == nil:
			a.deliver()
			return
		case errors.Is(err, syscall.ECANCELED):
			a.deliver()
			if rearm() != nil {
				return // closed meanwhile; or unusable: the caller's own timer still runs
			}
		default:
			return // closed by Stop
		}
	}
}
