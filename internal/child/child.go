// Package child supervises the command that `tokend exec` runs beside the
// refresher, for consumers that read their token once at start.
//
// Protocol of Supervisor.Run:
//
//  1. Wait for Ready (the first token is on disk); a signal or the end of
//     ctx before then returns ErrNotStarted, the command not run.
//  2. Start the command in its own process group (proc.Start: with the
//     terminal's foreground when tokend has it), with the environment Env
//     returns then: a restarted child sees the token of its start.
//  3. On each receive from Changes, apply the Policy: PolicySignal sends
//     ReloadSignal to the command; PolicyRestart stops its group (step 5)
//     and, once the command has exited, starts it again (step 2), after
//     the next RestartBackoff delay if it ran less than a minute (so that
//     a child whose restarts change the token is not respawned hot).
//     Changes during a restart coalesce into it.
//  4. A signal from Signals (tokend's SIGTERM, SIGINT) stops the group
//     (step 5) with that signal, for good; the end of ctx with StopSignal.
//  5. A stop signals the whole process group, and SIGKILLs it Grace later
//     if any member is left, though the command itself has exited.
//  6. When the command exits other than for a restart, what is left of its
//     group is stopped (step 5), and Run returns the command's exit code
//     (its exit status, or 128 plus the signal that killed it) once no
//     group it stopped has a member left, or 5 s after the SIGKILL.
//
// For the length of Run, tokend reaps every process re-parented to it
// (proc.Adopt: as PID 1 or a child subreaper), which is also how it learns
// that a stopped group has no member left.
package child

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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

// killWait bounds the wait for a killed group to empty. SIGKILL cannot be
// caught and tokend reaps the group's orphans, so only a member whose
// parent, outside the group, never reaps it stays that long.
const killWait = 5 * time.Second

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

	// The state of Run once the first token is on disk.
	child      *proc.Process             // the running command; nil between runs
	exited     <-chan syscall.WaitStatus // its Done; nil between runs
	lastStart  time.Time
	restarting bool             // the child is being stopped, or waits to start again
	startAt    <-chan time.Time // the backed-off start; nil when none is due
	stopping   map[int]bool     // groups sent a stop signal that may have members left
	stopped    chan int         // a group of stopping that has no member left (drain)
	ending     bool             // Run returns once no child runs and nothing is stopping
	code       int              // what Run returns, once ending
	err        error
}

// Run runs the command (see the package doc) and returns its exit code.
// An error means the command could not start (code 127), or ErrNotStarted.
func (s *Supervisor) Run(ctx context.Context) (int, error) {
	defer proc.Adopt(nil)()
	select {
	case <-s.Ready:
	case sig := <-s.Signals:
		return 128 + int(sysSignal(sig)), ErrNotStarted
	case <-ctx.Done():
		return 0, ErrNotStarted
	}
	s.stopping, s.stopped = map[int]bool{}, make(chan int)
	s.StopSignal, s.Logger = cmp.Or(s.StopSignal, syscall.SIGTERM), cmp.Or(s.Logger, slog.Default())
	s.Grace = cmp.Or(s.Grace, 10*time.Second)
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.RestartBackoff == nil {
		s.RestartBackoff = backoff.NewExponentialBackOff(backoff.WithInitialInterval(time.Second),
			backoff.WithMaxInterval(time.Minute), backoff.WithMaxElapsedTime(0))
	}
	if err := s.start(); err != nil {
		return 127, err
	}
	done := ctx.Done()
	for !s.ending || s.child != nil || len(s.stopping) > 0 {
		select {
		case ws := <-s.exited:
			s.exit(ws)
		case <-s.startAt:
			s.startAt = nil
			if err := s.start(); err != nil {
				s.ending, s.code, s.err = true, 127, err
			}
		case pgid := <-s.stopped:
			delete(s.stopping, pgid)
		case <-s.Changes:
			s.changed()
		case sig := <-s.Signals:
			s.end(sysSignal(sig), 128+int(sysSignal(sig)))
		case <-done:
			done = nil
			s.end(s.StopSignal, 0)
		}
	}
	return s.code, s.err
}

// sysSignal is sig as a syscall.Signal; SIGTERM for another kind.
func sysSignal(sig os.Signal) syscall.Signal {
	if s, ok := sig.(syscall.Signal); ok {
		return s
	}
	return syscall.SIGTERM
}

// start runs the command with a fresh environment.
func (s *Supervisor) start() error {
	env, err := s.Env()
	if err != nil {
		return err
	}
	p, err := proc.Start(s.Argv, env, s.Stdin, s.Stdout, s.Stderr)
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	s.child, s.exited, s.lastStart, s.restarting = p, p.Done(), s.Now(), false
	s.Logger.Info("child started", slog.Int("pid", p.Pid), slog.String("command", s.Argv[0]))
	return nil
}

// exit handles the command's exit: a restart follows, or Run ends once
// what is left of its group has stopped.
func (s *Supervisor) exit(ws syscall.WaitStatus) {
	code, pid := proc.ExitCode(ws), s.child.Pid
	s.child, s.exited = nil, nil
	s.Logger.Info("child exited", slog.Int("pid", pid), slog.Int("code", code))
	if !s.restarting {
		s.ending, s.code = true, code
		if !s.stopping[pid] && proc.GroupExists(pid) {
			s.Logger.Info("stopping the processes the child left in its group", slog.Int("pgid", pid))
			s.stopGroup(pid, s.StopSignal)
		}
		return
	}
	d := s.restartDelay()
	if d > 0 {
		s.Logger.Warn("child restarting often; backing off", slog.Duration("delay", d))
	}
	s.startAt = time.After(d)
}

// changed applies the policy to one token change.
func (s *Supervisor) changed() {
	if s.child == nil || s.restarting || s.ending {
		return
	}
	switch s.Policy {
	case PolicySignal:
		_ = syscall.Kill(s.child.Pid, s.ReloadSignal)
	case PolicyRestart:
		s.Logger.Info("token changed; restarting the child", slog.Int("pid", s.child.Pid))
		s.restarting = true
		s.stopGroup(s.child.Pid, s.StopSignal)
	}
}

// end stops the child's group with sig, for good: no restart follows. With
// no child running, Run ends with code.
func (s *Supervisor) end(sig syscall.Signal, code int) {
	s.restarting, s.ending, s.startAt = false, true, nil
	if s.child == nil {
		s.code = code
		return
	}
	s.stopGroup(s.child.Pid, sig)
}

// stopGroup sends sig to the group pgid, then SIGCONT so that a stopped
// member (SIGTTIN, SIGSTOP) gets it too, and, the first time, drains the
// group in the background.
func (s *Supervisor) stopGroup(pgid int, sig syscall.Signal) {
	if err := proc.SignalGroup(pgid, sig); err != nil {
		s.Logger.Warn("could not signal the child's process group", slog.Int("pgid", pgid), slog.String("error", err.Error()))
	}
	_ = proc.SignalGroup(pgid, syscall.SIGCONT)
	if !s.stopping[pgid] {
		s.stopping[pgid] = true
		go func() { s.drain(pgid); s.stopped <- pgid }()
	}
}

// drain returns once the group pgid has no member left: it kills the group
// if a member is left after Grace, and gives up on it killWait later.
func (s *Supervisor) drain(pgid int) {
	kill, giveUp := time.After(s.Grace), (<-chan time.Time)(nil)
	for {
		reaped := proc.Reaped() // before GroupExists: no reap goes unseen
		if !proc.GroupExists(pgid) {
			return
		}
		select {
		case <-reaped:
		case <-kill:
			s.Logger.Warn("child's process group did not stop within the grace period; killing it", slog.Int("pgid", pgid))
			_ = proc.SignalGroup(pgid, syscall.SIGKILL)
			kill, giveUp = nil, time.After(killWait)
		case <-giveUp:
			s.Logger.Warn("processes of the child's group outlived SIGKILL; no longer waiting for them", slog.Int("pgid", pgid))
			return
		}
	}
}

// restartDelay is zero for a child that ran stableAfter or longer (which
// resets the backoff), else the backoff's next delay.
func (s *Supervisor) restartDelay() time.Duration {
	if s.Now().Sub(s.lastStart) >= stableAfter {
		s.RestartBackoff.Reset()
		return 0
	}
	d := s.RestartBackoff.NextBackOff()
	if d == backoff.Stop {
		return time.Minute
	}
	return d
}
