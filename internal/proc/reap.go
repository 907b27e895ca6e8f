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
	lifecycle sync.Mutex // serialises Adopt against release

	mu       sync.Mutex // guards the fields below; serialises Start against reaping
	waiting  map[int]*Process
	active   bool // the wait(-1) loop runs
	adopters int
	hooks    map[*func(int)]struct{}
	next     chan struct{} // closed at the next reap
	stop     chan struct{} // ends the loop
	done     chan struct{} // closed when the loop has ended
}{waiting: map[int]*Process{}, hooks: map[*func(int)]struct{}{}, next: make(chan struct{})}

// Adopt makes tokend reap every child process, orphans included, until
// release is called. Unless tokend is PID 1 (which adopts orphans anyway)
// it becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER): a process
// whose parent exits is re-parented to tokend instead of the container's
// PID 1, so that tokend sees the end of every process of a group it
// started. reaped, when not nil, learns the pid of each reaped process
// that Start did not start; it is called with a lock held and must not
// block.
//
// Adopt may be called more than once; reaping lasts until every release
// has been called, and release may be called more than once.
func Adopt(reaped func(pid int)) (release func()) {
	reaper.lifecycle.Lock()
	defer reaper.lifecycle.Unlock()
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if reaper.adopters == 0 {
		if os.Getpid() != 1 {
			_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		}
		sigchld := make(chan os.Signal, 1)
		signal.Notify(sigchld, syscall.SIGCHLD)
		reaper.active = true
		reaper.stop, reaper.done = make(chan struct{}), make(chan struct{})
		go loop(sigchld, reaper.stop, reaper.done)
	}
	reaper.adopters++
	hook := &reaped
	reaper.hooks[hook] = struct{}{}
	return sync.OnceFunc(func() { unadopt(hook) })
}

func unadopt(hook *func(int)) {
	reaper.lifecycle.Lock()
	defer reaper.lifecycle.Unlock()
	reaper.mu.Lock()
	delete(reaper.hooks, hook)
	reaper.adopters--
	last := reaper.adopters == 0
	reaper.mu.Unlock()
	if !last {
		return
	}
	close(reaper.stop)
	<-reaper.done
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	reapAll()
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
	reaper.active = false
	for pid := range reaper.waiting {
		go waitPid(pid)
	}
}

// loop reaps on every SIGCHLD until stop is closed.
func loop(sigchld chan os.Signal, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer signal.Stop(sigchld)
	for {
		reaper.mu.Lock()
		reapAll()
		reaper.mu.Unlock()
		select {
		case <-sigchld:
		case <-stop:
			return
		}
	}
}

// reapAll collects every child that has exited, without blocking. The
// caller holds reaper.mu.
func reapAll() {
	reaped := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			break
		}
		reaped = true
		if !deliver(pid, ws) {
			for h := range reaper.hooks {
				if *h != nil {
					(*h)(pid)
				}
			}
		}
	}
	if reaped {
		tellReaped()
	}
}

// waitPid waits for pid alone, while no Adopt is in force.
func waitPid(pid int) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// ECHILD: the loop of an Adopt reaped it and delivered its
			// status, so deliver below finds nothing; or someone else
			// did, and a kill is the best report.
			ws = syscall.WaitStatus(syscall.SIGKILL)
		}
		break
	}
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if deliver(pid, ws) {
		tellReaped()
	}
}

// deliver hands a started process its status, once; it reports whether
// pid was one. The caller holds reaper.mu.
func deliver(pid int, ws syscall.WaitStatus) bool {
	p, ok := reaper.waiting[pid]
	if !ok {
		return false
	}
	delete(reaper.waiting, pid)
	if p.tty != nil {
		restoreForeground(p.tty, pid)
	}
	p.done <- ws
	return true
}

// tellReaped ends the wait of Reaped's callers. The caller holds reaper.mu.
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
