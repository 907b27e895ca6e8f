package proc

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper is process-wide, as wait(2) is.
var reaper = struct {
	mu      sync.Mutex // guards the fields below; serialises Start against reaping
	waiting map[int]*Process
	hooks   map[*func(int)]struct{} // one per Adopt in force
	stop    chan struct{}           // ends the wait(-1) loop; nil when none runs
	next    chan struct{}           // closed at the next reap
}{waiting: map[int]*Process{}, hooks: map[*func(int)]struct{}{}, next: make(chan struct{})}

// Adopt makes tokend reap every child process, orphans included, until
// release is called. Unless it is PID 1, tokend becomes a child subreaper:
// an orphan of a group it started is re-parented to it, not to the
// container's PID 1. reaped, when not nil, learns the pid of each reaped
// process that Start did not start; it is called with a lock held and
// must not block. Adopt may be called more than once; reaping lasts until
// every release, each idempotent, has been called.
func Adopt(reaped func(pid int)) (release func()) {
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if len(reaper.hooks) == 0 {
		subreaper(1)
		sigchld := make(chan os.Signal, 1)
		signal.Notify(sigchld, syscall.SIGCHLD)
		reaper.stop = make(chan struct{})
		go loop(sigchld, reaper.stop)
	}
	hook := &reaped
	reaper.hooks[hook] = struct{}{}
	reapAll()
	return sync.OnceFunc(func() {
		reaper.mu.Lock()
		defer reaper.mu.Unlock()
		delete(reaper.hooks, hook)
		if len(reaper.hooks) == 0 {
			close(reaper.stop)
			reaper.stop = nil
			reapAll()
			subreaper(0)
		}
	})
}

func subreaper(on uintptr) {
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, on, 0, 0, 0)
	}
}

// loop reaps on every SIGCHLD until stop is closed; once it is, it reaps
// no more, though it may take a moment to return.
func loop(sigchld chan os.Signal, stop chan struct{}) {
	defer signal.Stop(sigchld)
	for {
		select {
		case <-sigchld:
		case <-stop:
			return
		}
		reaper.mu.Lock()
		if reaper.stop == stop {
			reapAll()
		}
		reaper.mu.Unlock()
	}
}

// reapAll collects every child that has exited, without blocking. The
// caller holds reaper.mu.
func reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		deliver(pid, ws)
	}
}

// deliver hands pid's status to the process Start started, else tells
// Adopt's hooks of pid; either way it ends the wait of Reaped's callers.
// The caller holds reaper.mu.
func deliver(pid int, ws syscall.WaitStatus) {
	if p, ok := reaper.waiting[pid]; ok {
		settle(p, ws)
		return
	}
	for h := range reaper.hooks {
		if *h != nil {
			(*h)(pid)
		}
	}
	tellReaped()
}

// settle hands p its status, once, gives the terminal back to tokend's
// group if p's still has it, and ends the wait of Reaped's callers. The
// caller holds reaper.mu.
func settle(p *Process, ws syscall.WaitStatus) {
	if reaper.waiting[p.Pid] == p { // else its pid was reused since
		delete(reaper.waiting, p.Pid)
	}
	if p.tty != nil {
		restoreForeground(int(p.tty.Fd()), p.Pid)
	}
	p.done <- ws
	tellReaped()
}

func tellReaped() {
	close(reaper.next)
	reaper.next = make(chan struct{})
}

// Reaped returns a channel that is closed once the next process has been
// reaped: a caller that waits for a group to empty checks GroupExists
// after each.
func Reaped() <-chan struct{} {
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	return reaper.next
}
