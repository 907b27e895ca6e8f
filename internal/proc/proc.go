// Package proc starts the processes tokend runs (the command of `tokend
// exec`, an --on-change command) and collects their exit statuses. It is
// the only code in tokend that starts or waits for a process.
//
// Every process leads its own process group, so that a stop reaches the
// whole command, a shell wrapper's children included.
//
// Each started process is waited for by its pidfd. While Adopt is in
// force, a wait(-1) loop also reaps tokend's other children, orphans
// re-parented to it; whichever wait reaps a started process hands it its
// status.
//
// When stdin is tokend's controlling terminal and tokend's group holds its
// foreground, the new group takes the foreground (the command reads the
// terminal instead of stopping on SIGTTIN) until the process exits. In the
// background, tokend leaves the terminal alone, as a shell would.
//
// Everything here is safe for concurrent use.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process is a started process, the leader of its own process group.
type Process struct {
	// Pid is the process id, and the id of its process group.
	Pid  int
	done chan syscall.WaitStatus
	tty  *os.File // the terminal it was given the foreground of; nil when none
}

// Done receives the process's wait status once, when it has exited and
// been reaped.
func (p *Process) Done() <-chan syscall.WaitStatus { return p.done }

// Start runs argv[0] (looked up on PATH) with argv and env (tokend's own
// when nil), in a new process group, with stdin, stdout and stderr; a nil
// file is /dev/null, never a closed descriptor. Errors say what to fix.
func Start(argv, env []string, stdin, stdout, stderr *os.File) (*Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...) // exec.Cmd gives a nil file /dev/null
	if cmd.Err != nil {
		return nil, fmt.Errorf("%w (give the full path, or set PATH)", cmd.Err)
	}
	cmd.Env, cmd.SysProcAttr = env, &syscall.SysProcAttr{Setpgid: true}
	if stdin != nil {
		// stdin is tokend's controlling terminal (else TIOCGPGRP fails
		// with ENOTTY) with tokend's group in the foreground.
		fg, err := unix.IoctlGetInt(int(stdin.Fd()), unix.TIOCGPGRP)
		cmd.Stdin, cmd.SysProcAttr.Ctty = stdin, int(stdin.Fd()) // a descriptor of the parent
		cmd.SysProcAttr.Foreground = err == nil && fg == syscall.Getpgrp()
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], errors.Unwrap(err))
	}
	p := &Process{Pid: cmd.Process.Pid, done: make(chan syscall.WaitStatus, 1)}
	if cmd.SysProcAttr.Foreground {
		p.tty = stdin
	}
	reaper.waiting[p.Pid] = p
	go func() { // by pidfd: this process's end, never that of a reuse of its pid
		st, err := cmd.Process.Wait()
		if err != nil {
			_ = cmd.Process.Release() // a failed Wait leaves the pidfd open
		}
		reaper.mu.Lock()
		defer reaper.mu.Unlock()
		switch {
		case err == nil:
			settle(p, st.Sys().(syscall.WaitStatus))
		case reaper.waiting[p.Pid] == p: // reaped outside proc: a kill is the best report
			settle(p, syscall.WaitStatus(syscall.SIGKILL))
		} // else reapAll reaped it, and told p
	}()
	return p, nil
}

// SignalGroup sends sig to the process group pgid. A group with no member
// left is not an error: there is nothing to stop.
func SignalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// GroupExists reports whether the process group pgid has a member left,
// a zombie not yet reaped included.
func GroupExists(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// ExitCode is the shell's convention for a wait status: the exit status,
// or 128 plus the signal that killed the process.
func ExitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}

// restoreForeground gives the terminal fd's foreground back to tokend's
// group when group pgid holds it. From the background, tcsetpgrp needs
// SIGTTOU ignored: it is, for the call, under reaper.mu, so that no
// process starts meanwhile and inherits the ignored signal.
func restoreForeground(fd, pgid int) {
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err == nil && fg == pgid {
		signal.Ignore(syscall.SIGTTOU)
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp())
		signal.Reset(syscall.SIGTTOU)
	}
}
