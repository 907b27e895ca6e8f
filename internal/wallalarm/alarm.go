// Package wallalarm wakes a goroutine when the wall clock reaches a given
// time, also when the monotonic clock stood still meanwhile. Go's timers
// run on the monotonic clock, which stops while a node is suspended: a
// timer set for the refresh ahead of a token's expiry would fire that long
// after the node resumes, with the token expired. An Alarm fires as soon
// as the node resumes instead, holding no thread and waking nothing while
// it waits.
//
// On Linux an Alarm is a timerfd (timerfd_create(2)) on CLOCK_REALTIME,
// armed for an absolute time (TFD_TIMER_ABSTIME) and cancelled when the
// wall clock is set (TFD_TIMER_CANCEL_ON_SET); the kernel treats a resume
// from suspend as a set of the clock. Its reads go through the Go
// runtime's poller. Elsewhere New returns errors.ErrUnsupported.
package wallalarm

// An Alarm is armed for one wall-clock time. Its channel receives when the
// wall clock reaches that time, and also each time the wall clock is set
// (or the node resumes) before then: a receiver compares the wall clock
// with the time itself and waits on the channel again while it is early.
// C is safe for concurrent use; Stop must be called once, when the alarm
// is no longer needed, and not concurrently with itself.
type Alarm struct {
	c    chan struct{}
	stop func()
}

// C returns the channel on which the alarm delivers. It has a buffer of
// one and the alarm never blocks on it: deliveries a receiver has not yet
// taken merge into one.
func (a *Alarm) C() <-chan struct{} { return a.c }

// Stop disarms the alarm and releases what it holds; it returns once the
// alarm can no longer deliver.
func (a *Alarm) Stop() { a.stop() }

// deliver tells the receiver without blocking.
func (a *Alarm) deliver() {
	select {
	case a.c <- struct{}{}:
	default:
	}
}
