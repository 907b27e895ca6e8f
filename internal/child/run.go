package child

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// run is the state of Supervisor.Run once the first token is on disk.
type run struct {
	s   *Supervisor
	p   *procs
	b   backoff.BackOff
	log *slog.Logger

	pid        int                       // the running child; 0 between runs
	done       <-chan syscall.WaitStatus // its exit; nil between runs
	lastStart  time.Time
	restarting bool        // the child is being stopped, or waits to start again
	grace      *time.Timer // SIGKILL after StopSignal; nil when not stopping
	startAt    *time.Timer // the backed-off start; nil when none is due
}

func (r *run) loop(ctx context.Context) (int, error) {
	if err := r.start(); err != nil {
		return 127, err
	}
	done := ctx.Done()
	for {
		select {
		case ws := <-r.done:
			if code, end := r.exited(ws); end {
				return code, nil
			}
		case <-timerC(r.startAt):
			r.startAt = nil
			if err := r.start(); err != nil {
				return 127, err
			}
		case <-timerC(r.grace):
			r.log.Warn("child did not stop within the grace period; killing it", slog.Int("pid", r.pid))
			_ = signalGroup(r.pid, syscall.SIGKILL)
		case <-r.s.Changes:
			r.changed()
		case sig := <-r.s.Signals:
			if code, end := r.stop(sig, 128+signum(sig)); end {
				return code, nil
			}
		case <-done:
			done = nil
			if code, end := r.stop(nil, 0); end {
				return code, nil
			}
		}
	}
}

// start runs the command with a fresh environment.
func (r *run) start() error {
	env, err := r.s.Env()
	if err != nil {
		return err
	}
	pid, done, err := r.p.start(r.s.Argv, env, []*os.File{r.s.Stdin, r.s.Stdout, r.s.Stderr})
	if err != nil {
		return err
	}
	r.pid, r.done, r.lastStart, r.restarting = pid, done, r.now(), false
	r.log.Info("child started", slog.Int("pid", pid), slog.String("command", r.s.Argv[0]))
	if h := r.s.Hooks.Started; h != nil {
		h(pid)
	}
	return nil
}

// exited handles the child's exit: it reports whether Run ends, with the
// code, or a restart follows.
func (r *run) exited(ws syscall.WaitStatus) (int, bool) {
	code, pid := exitCode(ws), r.pid
	r.pid, r.done = 0, nil
	stopTimer(&r.grace)
	r.log.Info("child exited", slog.Int("pid", pid), slog.Int("code", code))
	if h := r.s.Hooks.Exited; h != nil {
		h(pid, code)
	}
	if !r.restarting {
		return code, true
	}
	if d := r.restartDelay(); d > 0 {
		r.log.Warn("child restarting often; backing off", slog.Duration("delay", d))
		r.startAt = time.NewTimer(d)
	} else {
		r.startAt = time.NewTimer(0)
	}
	return 0, false
}

// changed applies the policy to one token change.
func (r *run) changed() {
	switch {
	case r.s.Policy == PolicySignal && r.pid != 0 && !r.restarting:
		if err := syscall.Kill(r.pid, r.s.ReloadSignal); err == nil {
			if h := r.s.Hooks.Signalled; h != nil {
				h(r.pid, r.s.ReloadSignal)
			}
		}
	case r.s.Policy == PolicyRestart && !r.restarting:
		r.log.Info("token changed; restarting the child", slog.Int("pid", r.pid))
		r.restarting = true
		r.terminate()
	}
}

// terminate sends StopSignal to the child's group and arms the grace timer.
func (r *run) terminate() {
	sig := r.s.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	grace := r.s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	_ = signalGroup(r.pid, sig)
	stopTimer(&r.grace)
	r.grace = time.NewTimer(grace)
}

// stop ends supervision: it forwards sig (or, for nil, terminates the
// child) and cancels any restart. Between runs it ends Run with code.
func (r *run) stop(sig os.Signal, code int) (int, bool) {
	r.restarting = false
	if r.pid == 0 {
		stopTimer(&r.startAt)
		return code, true
	}
	if sig == nil {
		r.terminate()
		return 0, false
	}
	if s, ok := sig.(syscall.Signal); ok {
		_ = syscall.Kill(r.pid, s)
	}
	return 0, false
}

// restartDelay is zero for a child that ran StableAfter or longer (which
// resets the backoff), else the backoff's next delay.
func (r *run) restartDelay() time.Duration {
	stable := r.s.StableAfter
	if stable <= 0 {
		stable = DefaultStableAfter
	}
	if r.now().Sub(r.lastStart) >= stable {
		r.b.Reset()
		return 0
	}
	d := r.b.NextBackOff()
	if d == backoff.Stop {
		return time.Minute
	}
	return d
}

func (r *run) now() time.Time {
	if r.s.Now == nil {
		return time.Now()
	}
	return r.s.Now()
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
