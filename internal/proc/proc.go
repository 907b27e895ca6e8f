// Package proc starts the processes tokend runs (the command of `tokend
// exec`, an --on-change command) and collects their exit statuses. It is
// the only code in tokend that starts or waits for a process.
//
// Every process leads its own process group, so that a stop reaches the
// whole command, a shell wrapper's children included.
//
// Waiting: each started process is waited for by its own pid; orphans go
// to the PID 1 of the container. While Adopt is in force, a wait(-1) loop
// also reaps every child of tokend, orphans re-parented to it included
// (tokend then is PID 1, or a child subreaper); whichever wait reaps a
// started process hands it its status.
//
// Terminal: when the new process's stdin is the controlling terminal and
// tokend's group is its foreground group (tokend was started in the
// foreground), the new group takes the foreground, so that the command can
// read the terminal instead of being stopped by SIGTTIN, and gives it back
// when the process exits. Started in the background, tokend leaves the
// terminal alone, as a shell would for a background job.
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

// Process is a started process, the leader of its own process group, whose
// group id is its pid.
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
// file is /dev/null (never a closed descriptor, which the process's next
// open file would take the place of). Errors say what to fix.
func Start(argv, env []string, stdin, stdout, stderr *os.File) (*Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...) // exec.Cmd gives a nil file /dev/null
	if cmd.Err != nil {
		return nil, fmt.Errorf("%w (give the full path, or set PATH)", cmd.Err)
	}
	cmd.Env, cmd.SysProcAttr = env, &syscall.SysProcAttr{Setpgid: true}
	var tty *os.File
	if stdin != nil {
		cmd.Stdin, tty = stdin, foregroundTerminal(stdin)
	}
	if tty != nil {
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, int(tty.Fd()) // a descriptor of the parent
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
	p := &Process{Pid: cmd.Process.Pid, done: make(chan syscall.WaitStatus, 1), tty: tty}
	_ = cmd.Process.Release() // statuses come from wait4 (reap.go), not from exec.Cmd
	reaper.waiting[p.Pid] = p
	go waitPid(p.Pid)
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

// foregroundTerminal returns f when it is tokend's controlling terminal
// (else TIOCGPGRP fails with ENOTTY) and its foreground process group is
// tokend's own, else nil.
func foregroundTerminal(f *os.File) *os.File {
	if fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP); err != nil || fg != syscall.Getpgrp() {
		return nil
	}
	return f
}

// restoreForeground gives the terminal's foreground back to tokend's group
// when group pgid still holds it. From the background, tcsetpgrp needs
// SIGTTOU ignored: it is, for the call, with reaper.mu held so that no
// process starts meanwhile and inherits the ignored signal.
func restoreForeground(tty *os.File, pgid int) {
	fd := int(tty.Fd())
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || fg != pgid {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp())
}
