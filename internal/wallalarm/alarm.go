// Package wallalarm wakes a goroutine when the wall clock reaches a given
// time, also when the monotonic clock stood still meanwhile. Go's timers
// run on the monotonic clock, which stops while a node is suspended: a
// timer set for the refresh ahead of a token's expiry would fire that long
// after the node resumes, with the token expired. An alarm fires as soon
// as the node resumes instead, holding no thread and waking nothing while
// it waits.
//
// On Linux an alarm is a timerfd (timerfd_create(2)) on CLOCK_REALTIME,
// armed for an absolute time (TFD_TIMER_ABSTIME) and cancelled when the
// wall clock is set (TFD_TIMER_CANCEL_ON_SET); the kernel treats a resume
// from suspend as a set of the clock. Its reads go through the Go
// runtime's poller. Elsewhere New returns errors.ErrUnsupported.
package wallalarm
