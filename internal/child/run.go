package child

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/proc"
)

// run is the state of Supervisor.Run once the first token is on disk: the
// Supervisor with the defaults of its zero fields, and what runs.
type run struct {
	Supervisor
	child      *proc.Process // the running command; nil between runs
	lastStart  time.Time
	restarting bool             // the child is being stopped, or waits to start again
	startAt    <-chan time.Time // the backed-off start; nil when none is due
	stopping   map[int]bool     // groups sent a stop signal that may have members left
	stopped    chan int         // a group of stopping that has no member left (drain)
	ending     bool             // Run returns once no child runs and nothing is stopping
	code       int              // what Run returns, once ending
	err        error
}

// killWait bounds the wait for a killed group to empty. SIGKILL cannot be
// caught and tokend reaps the group's orphans, so only a member whose
// parent, outside the group, never reaps it stays that long.
const killWait = 5 * time.Second

func (r *run) loop(ctx context.Context) (int, error) {
	if err := r.start(); err != nil {
		return 127, err
	}
	done := ctx.Done()
	for !r.ending || r.child != nil || len(r.stopping) > 0 {
		var exited <-chan syscall.WaitStatus
		if r.child != nil {
			exited = r.child.Done()
		}
		select {
		case ws := <-exited:
			r.exited(ws)
		case <-r.startAt:
			r.startAt = nil
			if err := r.start(); err != nil {
				r.ending, r.code, r.err = true, 127, err
			}
		case pgid := <-r.stopped:
			delete(r.stopping, pgid)
		case <-r.Changes:
			r.changed()
		case sig := <-r.Signals:
			r.end(sysSignal(sig), 128+int(sysSignal(sig)))
		case <-done:
			done = nil
			r.end(r.StopSignal, 0)
		}
	}
	return r.code, r.err
}

// start runs the command with a fresh environment.
func (r *run) start() error {
	env, err := r.Env()
	if err != nil {
		return err
	}
	p, err := proc.Start(r.Argv, env, r.Stdin, r.Stdout, r.Stderr)
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	r.child, r.lastStart, r.restarting = p, r.Now(), false
	r.Logger.Info("child started", slog.Int("pid", p.Pid), slog.String("command", r.Argv[0]))
	return nil
}

// exited handles the command's exit: a restart follows, or Run ends once
// what is left of its group has stopped.
func (r *run) exited(ws syscall.WaitStatus) {
	code, pid := proc.ExitCode(ws), r.child.Pid
	r.child = nil
	r.Logger.Info("child exited", slog.Int("pid", pid), slog.Int("code", code))
	if !r.restarting {
		r.ending, r.code = true, code
		if !r.stopping[pid] && proc.GroupExists(pid) {
			r.Logger.Info("stopping the processes the child left in its group", slog.Int("pgid", pid))
			r.stopGroup(pid, r.StopSignal)
		}
		return
	}
	d := r.restartDelay()
	if d > 0 {
		r.Logger.Warn("child restarting often; backing off", slog.Duration("delay", d))
	}
	r.startAt = time.After(d)
}

// changed applies the policy to one token change.
func (r *run) changed() {
	if r.child == nil || r.restarting || r.ending {
		return
	}
	switch r.Policy {
	case PolicySignal:
		_ = syscall.Kill(r.child.Pid, r.ReloadSignal)
	case PolicyRestart:
		r.Logger.Info("token changed; restarting the child", slog.Int("pid", r.child.Pid))
		r.restarting = true
		r.stopGroup(r.child.Pid, r.StopSignal)
	}
}

// end stops the child's group with sig, for good: no restart follows. With
// no child running, Run ends with code.
func (r *run) end(sig syscall.Signal, code int) {
	r.restarting, r.ending, r.startAt = false, true, nil
	if r.child == nil {
		r.code = code
		return
	}
	r.stopGroup(r.child.Pid, sig)
}

// stopGroup sends sig to the group pgid, then SIGCONT so that a stopped
// member (SIGTTIN, SIGSTOP) gets it too, and, the first time, drains the
// group in the background.
func (r *run) stopGroup(pgid int, sig syscall.Signal) {
	if err := proc.SignalGroup(pgid, sig); err != nil {
		r.Logger.Warn("could not signal the child's process group", slog.Int("pgid", pgid), slog.String("error", err.Error()))
	}
	_ = proc.SignalGroup(pgid, syscall.SIGCONT)
	if !r.stopping[pgid] {
		r.stopping[pgid] = true
		go func() { r.drain(pgid); r.stopped <- pgid }()
	}
}

// drain returns once the group pgid has no member left: it kills the group
// if a member is left after Grace, and gives up on it killWait later.
func (r *run) drain(pgid int) {
	kill, giveUp := time.After(r.Grace), (<-chan time.Time)(nil)
	for {
		reaped := proc.Reaped() // before GroupExists: no reap goes unseen
		if !proc.GroupExists(pgid) {
			return
		}
		select {
		case <-reaped:
		case <-kill:
			r.Logger.Warn("child's process group did not stop within the grace period; killing it", slog.Int("pgid", pgid))
			_ = proc.SignalGroup(pgid, syscall.SIGKILL)
			kill, giveUp = nil, time.After(killWait)
		case <-giveUp:
			r.Logger.Warn("processes of the child's group outlived SIGKILL; no longer waiting for them", slog.Int("pgid", pgid))
			return
		}
	}
}

// restartDelay is zero for a child that ran stableAfter or longer (which
// resets the backoff), else the backoff's next delay.
func (r *run) restartDelay() time.Duration {
	if r.Now().Sub(r.lastStart) >= stableAfter {
		r.RestartBackoff.Reset()
		return 0
	}
	d := r.RestartBackoff.NextBackOff()
	if d == backoff.Stop {
		return time.Minute
	}
	return d
}
