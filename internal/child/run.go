package child

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/proc"
)

// run is the state of Supervisor.Run once the first token is on disk.
type run struct {
	s   *Supervisor
	b   backoff.BackOff
	log *slog.Logger

	child      *proc.Process // the running command; nil between runs
	lastStart  time.Time
	restarting bool        // the child is being stopped, or waits to start again
	startAt    *time.Timer // the backed-off start; nil when none is due
	stopping   []*stopping // groups sent a stop signal that may have members left
	ending     bool        // Run returns once no child runs and nothing is stopping
	code       int         // what Run returns, once ending
	err        error
}

// stopping is a process group that was sent a stop signal. At deadline it
// gets SIGKILL; once killed, the next deadline gives up on it.
type stopping struct {
	pgid     int
	deadline time.Time
	killed   bool
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
	for {
		reaped := proc.Reaped() // before drained: no reap goes unseen
		r.drained()
		if r.ending && r.child == nil && len(r.stopping) == 0 {
			return r.code, r.err
		}
		if len(r.stopping) == 0 {
			reaped = nil
		}
		var exited <-chan syscall.WaitStatus
		if r.child != nil {
			exited = r.child.Done()
		}
		select {
		case ws := <-exited:
			r.exited(ws)
		case <-timerC(r.startAt):
			r.startAt = nil
			if err := r.start(); err != nil {
				r.ending, r.code, r.err = true, 127, err
			}
		case <-r.wake():
			r.deadlines()
		case <-reaped:
		case <-r.s.Changes:
			r.changed()
		case sig := <-r.s.Signals:
			r.end(sysSignal(sig), 128+int(sysSignal(sig)))
		case <-done:
			done = nil
			r.end(r.s.StopSignal, 0)
		}
	}
}

// start runs the command with a fresh environment.
func (r *run) start() error {
	env, err := r.s.Env()
	if err != nil {
		return err
	}
	p, err := proc.Start(r.s.Argv, env, []*os.File{r.s.Stdin, r.s.Stdout, r.s.Stderr})
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	r.child, r.lastStart, r.restarting = p, r.s.Now(), false
	r.log.Info("child started", slog.Int("pid", p.Pid), slog.String("command", r.s.Argv[0]))
	if h := r.s.Hooks.Started; h != nil {
		h(p.Pid)
	}
	return nil
}

// exited handles the command's exit: a restart follows, or Run ends once
// what is left of its group has stopped.
func (r *run) exited(ws syscall.WaitStatus) {
	code, pid := proc.ExitCode(ws), r.child.Pid
	r.child = nil
	r.log.Info("child exited", slog.Int("pid", pid), slog.Int("code", code))
	if !r.restarting {
		r.ending, r.code = true, code
		if !r.isStopping(pid) && proc.GroupExists(pid) {
			r.log.Info("stopping the processes the child left in its group", slog.Int("pgid", pid))
			r.stopGroup(pid, r.s.StopSignal)
		}
		return
	}
	d := r.restartDelay()
	if d > 0 {
		r.log.Warn("child restarting often; backing off", slog.Duration("delay", d))
	}
	r.startAt = time.NewTimer(d)
}

// changed applies the policy to one token change.
func (r *run) changed() {
	if r.child == nil || r.restarting || r.ending {
		return
	}
	switch r.s.Policy {
	case PolicySignal:
		if err := syscall.Kill(r.child.Pid, r.s.ReloadSignal); err == nil {
			if h := r.s.Hooks.Signalled; h != nil {
				h(r.child.Pid, r.s.ReloadSignal)
			}
		}
	case PolicyRestart:
		r.log.Info("token changed; restarting the child", slog.Int("pid", r.child.Pid))
		r.restarting = true
		r.stopGroup(r.child.Pid, r.s.StopSignal)
	}
}

// end stops the child's group with sig, for good: no restart follows. With
// no child running, Run ends with code.
func (r *run) end(sig syscall.Signal, code int) {
	r.restarting, r.ending = false, true
	stopTimer(&r.startAt)
	if r.child == nil {
		r.code = code
		return
	}
	r.stopGroup(r.child.Pid, sig)
}

// stopGroup sends sig to the group pgid, then SIGCONT so that a stopped
// member (SIGTTIN, SIGSTOP) gets it too, and, the first time, sets the
// group's SIGKILL deadline.
func (r *run) stopGroup(pgid int, sig syscall.Signal) {
	if err := proc.SignalGroup(pgid, sig); err != nil {
		r.log.Warn("could not signal the child's process group", slog.Int("pgid", pgid), slog.String("error", err.Error()))
	}
	_ = proc.SignalGroup(pgid, syscall.SIGCONT)
	if !r.isStopping(pgid) {
		r.stopping = append(r.stopping, &stopping{pgid: pgid, deadline: time.Now().Add(r.s.Grace)})
	}
}

func (r *run) isStopping(pgid int) bool {
	return slices.ContainsFunc(r.stopping, func(g *stopping) bool { return g.pgid == pgid })
}

// drained forgets the stopped groups that have no member left.
func (r *run) drained() {
	r.stopping = slices.DeleteFunc(r.stopping, func(g *stopping) bool { return !proc.GroupExists(g.pgid) })
}

// deadlines kills the groups whose grace period is over, and gives up on
// killed groups whose second one is.
func (r *run) deadlines() {
	now := time.Now()
	r.stopping = slices.DeleteFunc(r.stopping, func(g *stopping) bool {
		switch {
		case now.Before(g.deadline):
			return false
		case !g.killed:
			r.log.Warn("child's process group did not stop within the grace period; killing it", slog.Int("pgid", g.pgid))
			_ = proc.SignalGroup(g.pgid, syscall.SIGKILL)
			g.killed, g.deadline = true, now.Add(killWait)
			return false
		}
		r.log.Warn("processes of the child's group outlived SIGKILL; no longer waiting for them", slog.Int("pgid", g.pgid))
		return true
	})
}

// wake fires at the earliest deadline of a stopping group; nil when none.
func (r *run) wake() <-chan time.Time {
	if len(r.stopping) == 0 {
		return nil
	}
	first := slices.MinFunc(r.stopping, func(a, b *stopping) int { return a.deadline.Compare(b.deadline) })
	return time.After(time.Until(first.deadline))
}

// restartDelay is zero for a child that ran StableAfter or longer (which
// resets the backoff), else the backoff's next delay.
func (r *run) restartDelay() time.Duration {
	if r.s.Now().Sub(r.lastStart) >= r.s.StableAfter {
		r.b.Reset()
		return 0
	}
	d := r.b.NextBackOff()
	if d == backoff.Stop {
		return time.Minute
	}
	return d
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
