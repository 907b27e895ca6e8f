package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/notify"
	"github.com/ambient-code/tokend/internal/tokenbytes"
	"github.com/ambient-code/tokend/internal/tokendir"
)

// ExecDeps are what Exec takes besides Deps.
type ExecDeps struct {
	// Signals carries the signals to forward to the child (SIGTERM,
	// SIGINT); the caller registers them with signal.Notify.
	Signals <-chan os.Signal
	// Stdin, Stdout and Stderr are the child's; os.Stdin, os.Stdout and
	// os.Stderr when nil.
	Stdin, Stdout, Stderr *os.File
	// RestartBackoff replaces the child's restart backoff when not nil
	// (measurements of back-to-back restarts).
	RestartBackoff backoff.BackOff
}

// Exec runs Run and, once the first token is written, the command of
// cfg.Exec, until that command exits; it returns the command's exit code
// (128 plus the signal that killed it). The end of ctx does not stop the
// command: tokend's SIGTERM and SIGINT reach it through x.Signals, and the
// refresher runs on until it exits. A signal before the first token ends
// Exec with 128 plus that signal and the command never runs. An error
// means Run could not start or failed, or the command could not start.
func Exec(ctx context.Context, cfg *Config, d Deps, x ExecDeps) (int, error) {
	var changes chan struct{} // nil under PolicyNone: the child is never told
	var policy notify.Notifier
	if p := cfg.Exec.Policy; p != "" && p != child.PolicyNone {
		changes = make(chan struct{})
		policy = childPolicy(changes)
	}
	w, err := wire(cfg, d, policy)
	if err != nil {
		return 1, err
	}
	inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	runErr := make(chan error, 1)
	go func() {
		runErr <- w.run(inner, d)
		cancel() // a failed Run stops the child too
	}()
	e := cfg.Exec
	sup := &child.Supervisor{
		Argv: e.Argv, Env: childEnv(cfg),
		Policy: e.Policy, ReloadSignal: e.ReloadSignal, StopSignal: e.StopSignal, Grace: e.Grace,
		Stdin: cmp.Or(x.Stdin, os.Stdin), Stdout: cmp.Or(x.Stdout, os.Stdout), Stderr: cmp.Or(x.Stderr, os.Stderr),
		Ready: w.held.Ready(), Changes: changes, Signals: x.Signals, // the first token starts it; changes per policy
		Logger: w.log, RestartBackoff: x.RestartBackoff,
	}
	code, err := sup.Run(inner)
	cancel()
	if rerr := <-runErr; rerr != nil {
		return 1, rerr
	}
	if errors.Is(err, child.ErrNotStarted) {
		w.log.Info("stopped before the first token; the command did not run")
		return code, nil
	}
	return code, err
}

// childPolicy is the exec child among the notifiers of a change: Notify
// hands the change to the child's Supervisor, which applies
// --change-policy to it.
type childPolicy chan<- struct{}

// Name returns "exec".
func (childPolicy) Name() string { return "exec" }

// Notify returns once the Supervisor took the change, or ctx ended.
func (c childPolicy) Notify(ctx context.Context) error {
	select {
	case c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// childEnv returns the child's environment at each start: tokend's own
// without its credentials, the token file's path and, with --token-env, the
// token on disk then (tokendir.ReadToken: empty while it is withdrawn).
func childEnv(cfg *Config) func() ([]string, error) {
	e := cfg.Exec
	return func() ([]string, error) {
		set := []string{e.TokenFileEnv + "=" + cfg.TokenFile}
		if e.TokenEnv != "" {
			tok, err := tokendir.ReadToken(cfg.TokenFile) // withdrawn: empty, the child starts without a token
			if err != nil && !errors.Is(err, tokenbytes.ErrWithdrawn) {
				return nil, fmt.Errorf("reading the token for --token-env: %w", err)
			}
			set = append(set, e.TokenEnv+"="+tok.Reveal())
		}
		return inheritedEnv(cfg.SecretEnv, set...), nil
	}
}
