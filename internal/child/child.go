// Package child supervises the command that `tokend exec` runs beside the
// refresher, for consumers that read their token once at start.
//
// Protocol of Supervisor.Run:
//
//  1. Wait for Ready (the first token is on disk). A signal or the end of
//     ctx before then returns ErrNotStarted: the command never runs
//     without a token.
//  2. Start the command in its own process group (internal/proc: with the
//     terminal's foreground when tokend has it), with the environment Env
//     returns at that moment (so a restarted child sees the token of its
//     start).
//  3. On each receive from Changes, apply the Policy: PolicyNone does
//     nothing; PolicySignal sends ReloadSignal to the command; PolicyRestart
//     stops its process group (step 5) and, once the command has exited,
//     starts it again (step 2). Changes that arrive while a restart is under
//     way coalesce into it.
//  4. Each signal from Signals (tokend's own SIGTERM, SIGINT) stops the
//     process group (step 5) with that signal, and no restart follows. The
//     end of ctx does the same with StopSignal.
//  5. A stop sends its signal to the whole process group, and SIGKILL to
//     the group Grace later if any member is left: the command's own exit
//     does not cancel it, so a process of the group that ignores the signal
//     does not outlive the stop. One rule for every stop, forwarded signal
//     or restart: the target is the group.
//  6. When the command exits other than for a restart, what is left of its
//     group is stopped (step 5), and Run returns the command's exit code
//     (its exit status, or 128 plus the signal that killed it) once no group
//     it stopped has a member left, or one more Grace after the SIGKILL.
//
// Restarts are backed off: a restart that follows a start by less than
// StableAfter waits for the next RestartBackoff delay, so a child whose
// restarts trigger token changes (a 401 loop, say) is not respawned hot.
//
// Orphans: for the length of Run, tokend reaps every process re-parented
// to it (proc.Adopt: it is PID 1, or becomes a child subreaper), which is
// also how it learns that a stopped group has no member left.
package child

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/proc"
)

// Policy says what a token change does to the child.
type Policy string

// Policies.
const (
	// PolicyNone leaves the child alone: it re-reads the token file, or
	// gets its token another way (the default).
	PolicyNone Policy = "none"
	// PolicySignal sends the child ReloadSignal.
	PolicySignal Policy = "signal"
	// PolicyRestart stops the child and starts it again.
	PolicyRestart Policy = "restart"
)

// Defaults for zero fields of Supervisor.
const (
	DefaultGrace       = 10 * time.Second
	DefaultStableAfter = time.Minute
)

// ErrNotStarted is returned by Run when it ends before the child started.
var ErrNotStarted = errors.New("child: stopped before the command started")

// Hooks observe a Supervisor (tests, measurements). Any field may be nil;
// they run on Run's goroutine (Reaped, the pid of an orphan reaped, on the
// reaper's) and must not block.
type Hooks struct {
	Started   func(pid int)
	Signalled func(pid int, sig syscall.Signal)
	Reaped    func(pid int)
}

// Supervisor runs one command (see the package doc). Set the fields, then
// call Run once; it is not for use by more than one goroutine.
type Supervisor struct {
	// Argv is the command and its arguments; Argv[0] is looked up on PATH.
	Argv []string
	// Env returns the child's environment at each start. Required.
	Env func() ([]string, error)
	// Policy on a token change; PolicyNone when empty.
	Policy Policy
	// ReloadSignal is sent on a change under PolicySignal.
	ReloadSignal syscall.Signal
	// StopSignal stops the child's group for a restart or at the end of
	// ctx; SIGTERM when zero.
	StopSignal syscall.Signal
	// Grace is how long a stopping process group has before SIGKILL;
	// DefaultGrace when zero.
	Grace time.Duration
	// StableAfter: a child that ran this long restarts at once and resets
	// RestartBackoff; DefaultStableAfter when zero.
	StableAfter time.Duration
	// RestartBackoff spaces restarts of short-lived children; exponential
	// from 1 s to 1 min when nil.
	RestartBackoff backoff.BackOff
	// Stdin, Stdout and Stderr are the child's; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Ready is closed (or sent on) once the first token is on disk.
	Ready <-chan struct{}
	// Changes carries one receive per token change.
	Changes <-chan struct{}
	// Signals carries signals that stop the child's group (step 4).
	Signals <-chan os.Signal
	// Logger receives one line per start, stop and exit; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Hooks observe the supervisor.
	Hooks Hooks
	// Now is the clock for StableAfter; time.Now when nil.
	Now func() time.Time
}

// Run runs the command until it exits on its own or after a forwarded
// signal, and returns its exit code. The end of ctx stops the child's
// group as a restart would (StopSignal, Grace, SIGKILL) and returns its
// code. An error means the command could not start (code 127) or
// ErrNotStarted.
func (s *Supervisor) Run(ctx context.Context) (int, error) {
	defer proc.Adopt(s.Hooks.Reaped)()
	select {
	case <-s.Ready:
	case sig := <-s.Signals:
		return 128 + int(sysSignal(sig)), ErrNotStarted
	case <-ctx.Done():
		return 0, ErrNotStarted
	}
	cfg := *s // with the defaults of its zero fields
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = DefaultStableAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &run{s: &cfg, b: s.RestartBackoff, log: s.Logger}
	if r.b == nil {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = time.Second, time.Minute, 0
		b.Reset()
		r.b = b
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r.loop(ctx)
}

// sysSignal is sig as a syscall.Signal; SIGTERM for another kind.
func sysSignal(sig os.Signal) syscall.Signal {
	if s, ok := sig.(syscall.Signal); ok {
		return s
	}
	return syscall.SIGTERM
}
