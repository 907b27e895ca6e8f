// Package child supervises the command that `tokend exec` runs beside the
// refresher, for consumers that read their token once at start.
//
// Protocol of Supervisor.Run:
//
//  1. Wait for Ready (the first token is on disk). A signal or the end of
//     ctx before then returns ErrNotStarted: the command never runs
//     without a token.
//  2. Start the command in its own process group (proc.Start: with the
//     terminal's foreground when tokend has it), with the environment Env
//     returns then: a restarted child sees the token of its start.
//  3. On each receive from Changes, apply the Policy: PolicySignal sends
//     ReloadSignal to the command; PolicyRestart stops its group (step 5)
//     and, once the command has exited, starts it again (step 2), after
//     the next RestartBackoff delay if it ran less than a minute, so that
//     a child whose restarts change the token (a 401 loop, say) is not
//     respawned hot. Changes during a restart coalesce into it.
//  4. A signal from Signals (tokend's own SIGTERM, SIGINT) stops the group
//     (step 5) with that signal, for good; the end of ctx does so with
//     StopSignal.
//  5. A stop sends its signal to the whole process group, and SIGKILL
//     Grace later if any member is left, though the command itself has
//     exited: every stop, forwarded signal or restart, targets the group.
//  6. When the command exits other than for a restart, what is left of its
//     group is stopped (step 5), and Run returns the command's exit code
//     (its exit status, or 128 plus the signal that killed it) once no
//     group it stopped has a member left, or 5 s after the SIGKILL.
//
// For the length of Run, tokend reaps every process re-parented to it
// (proc.Adopt: it is PID 1, or becomes a child subreaper), which is also
// how it learns that a stopped group has no member left.
package child

import (
	"cmp"
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

// stableAfter: a child that ran this long restarts at once and resets
// RestartBackoff.
const stableAfter = time.Minute

// ErrNotStarted is returned by Run when it ends before the child started.
var ErrNotStarted = errors.New("child: stopped before the command started")

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
	// Grace is how long a stopping process group has before SIGKILL; 10 s
	// when zero.
	Grace time.Duration
	// RestartBackoff spaces restarts of children that ran less than a
	// minute; exponential from 1 s to 1 min when nil.
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
	// Now is the clock that tells how long a child ran; time.Now when nil.
	Now func() time.Time
}

// Run runs the command until it exits on its own or after a forwarded
// signal, and returns its exit code. The end of ctx stops the child's
// group as a restart would (StopSignal, Grace, SIGKILL) and returns its
// code. An error means the command could not start (code 127) or
// ErrNotStarted.
func (s *Supervisor) Run(ctx context.Context) (int, error) {
	defer proc.Adopt(nil)()
	select {
	case <-s.Ready:
	case sig := <-s.Signals:
		return 128 + int(sysSignal(sig)), ErrNotStarted
	case <-ctx.Done():
		return 0, ErrNotStarted
	}
	r := &run{Supervisor: *s, stopping: map[int]bool{}, stopped: make(chan int)}
	r.StopSignal, r.Logger = cmp.Or(r.StopSignal, syscall.SIGTERM), cmp.Or(r.Logger, slog.Default())
	if r.Grace <= 0 {
		r.Grace = 10 * time.Second
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.RestartBackoff == nil {
		r.RestartBackoff = backoff.NewExponentialBackOff(backoff.WithInitialInterval(time.Second),
			backoff.WithMaxInterval(time.Minute), backoff.WithMaxElapsedTime(0))
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
