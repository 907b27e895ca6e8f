package child

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"syscall"
)

// procs starts processes and collects their exit statuses. With reapAll it
// also reaps every other child of this process (orphans re-parented to it
// as PID 1), through one wait(-1) loop, so that no other wait races it for
// the status of the command it started.
type procs struct {
	reapAll bool
	reaped  func(pid int) // an orphan was reaped; may be nil

	mu      sync.Mutex // guards waiting and serialises start against reap
	waiting map[int]chan syscall.WaitStatus
	sigchld chan os.Signal
}

func newProcs(reapAll bool, reaped func(int)) *procs {
	p := &procs{reapAll: reapAll, reaped: reaped, waiting: map[int]chan syscall.WaitStatus{}}
	if reapAll {
		p.sigchld = make(chan os.Signal, 1)
		signal.Notify(p.sigchld, syscall.SIGCHLD)
	}
	return p
}

// start runs argv with env in its own process group (so that the stop and
// kill reach the whole command, a shell wrapper's children included). The
// returned channel receives the exit status once.
func (p *procs) start(argv, env []string, files []*os.File) (int, <-chan syscall.WaitStatus, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, nil, fmt.Errorf("child: %w (give the full path, or set PATH)", err)
	}
	files, closeNull, err := withDevNull(files)
	if err != nil {
		return 0, nil, err
	}
	defer closeNull()
	attr := &os.ProcAttr{Env: env, Files: files, Sys: &syscall.SysProcAttr{Setpgid: true}}
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return 0, nil, fmt.Errorf("child: starting %s: %w", argv[0], errors.Unwrap(err))
	}
	pid := proc.Pid
	_ = proc.Release() // statuses come from wait4 below, not from os.Process
	done := make(chan syscall.WaitStatus, 1)
	if p.reapAll {
		p.waiting[pid] = done
	} else {
		go waitPid(pid, done)
	}
	return pid, done, nil
}

// waitPid waits for pid alone, for a tokend that is not PID 1: orphans are
// then re-parented to the pod's PID 1, which reaps them.
func waitPid(pid int, done chan<- syscall.WaitStatus) {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: someone else reaped it; report a kill
			ws = syscall.WaitStatus(syscall.SIGKILL)
		}
		done <- ws
		return
	}
}

// run reaps children on every SIGCHLD until ctx ends (reapAll only).
func (p *procs) run(ctx context.Context) {
	if !p.reapAll {
		return
	}
	defer signal.Stop(p.sigchld)
	for {
		p.reap()
		select {
		case <-p.sigchld:
		case <-ctx.Done():
			return
		}
	}
}

// reap collects every child that has exited, without blocking.
func (p *procs) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if done, ok := p.waiting[pid]; ok {
			delete(p.waiting, pid)
			done <- ws
		} else if p.reaped != nil {
			p.reaped(pid)
		}
	}
}

// signalGroup sends sig to the process group that pid leads; when the
// group is gone already (the leader moved to a new session, or exited), to
// pid alone.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(pid, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil // exited; its status is on the way
	}
	return err
}

// exitCode is the shell's convention: the exit status, or 128 plus the
// signal that killed the process.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}

// withDevNull replaces nil entries of files with /dev/null: a nil entry
// would start the child with that descriptor closed, and its next open
// file would take the place of stdin or stdout.
func withDevNull(files []*os.File) ([]*os.File, func(), error) {
	if !slices.Contains(files, nil) {
		return files, func() {}, nil
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("child: %w", err)
	}
	out := slices.Clone(files)
	for i, f := range out {
		if f == nil {
			out[i] = null
		}
	}
	return out, func() { null.Close() }, nil
}
