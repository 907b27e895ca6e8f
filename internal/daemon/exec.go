package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/config"
	"github.com/ambient-code/tokend/internal/filewriter"
)

// ExecDeps are what Exec takes besides Deps.
type ExecDeps struct {
	// Signals carries the signals to forward to the child (SIGTERM,
	// SIGINT); the caller registers them with signal.Notify.
	Signals <-chan os.Signal
	// Stdin, Stdout and Stderr are the child's; os.Stdin, os.Stdout and
	// os.Stderr when nil.
	Stdin, Stdout, Stderr *os.File
	// Hooks observe the child (tests, measurements).
	Hooks child.Hooks
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
func Exec(ctx context.Context, cfg *config.Config, d Deps, x ExecDeps) (int, error) {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	d.exec = &execHooks{ready: make(chan struct{}), changes: make(chan struct{}, 1)}
	runErr := make(chan error, 1)
	go func() {
		runErr <- Run(inner, cfg, d)
		cancel() // a failed Run stops the child too
	}()
	sup := supervisor(cfg, d.exec, x, log)
	code, err := sup.Run(inner)
	cancel()
	if rerr := <-runErr; rerr != nil {
		return 1, rerr
	}
	if errors.Is(err, child.ErrNotStarted) {
		log.Info("stopped before the first token; the command did not run")
		return code, nil
	}
	return code, err
}

func supervisor(cfg *config.Config, ex *execHooks, x ExecDeps, log *slog.Logger) *child.Supervisor {
	e := cfg.Exec
	return &child.Supervisor{
		Argv:         e.Argv,
		Env:          childEnv(cfg),
		Policy:       e.Policy,
		ReloadSignal: e.ReloadSignal,
		StopSignal:   e.StopSignal,
		Grace:        e.Grace,
		Stdin:        orFile(x.Stdin, os.Stdin),
		Stdout:       orFile(x.Stdout, os.Stdout),
		Stderr:       orFile(x.Stderr, os.Stderr),
		Ready:        ex.ready,
		Changes:      ex.changes,
		Signals:      x.Signals,
		Logger:       log,
		Hooks:        x.Hooks,

		RestartBackoff: x.RestartBackoff,
	}
}

// childEnv returns the child's environment at each start: tokend's own
// without its credentials, plus the token file's path and, with
// --token-env, the token as it is on disk at that moment.
func childEnv(cfg *config.Config) func() ([]string, error) {
	e := cfg.Exec
	drop := append(config.SecretEnv(), e.TokenFileEnv)
	if e.TokenEnv != "" {
		drop = append(drop, e.TokenEnv)
	}
	return func() ([]string, error) {
		env := append(inheritedEnv(drop), e.TokenFileEnv+"="+cfg.TokenFile)
		if e.TokenEnv == "" {
			return env, nil
		}
		tok, err := filewriter.New(cfg.TokenFile, 0).Read()
		if err != nil {
			return nil, fmt.Errorf("reading the token for --token-env: %w", err)
		}
		return append(env, e.TokenEnv+"="+string(tok)), nil
	}
}

func orFile(f, def *os.File) *os.File {
	if f == nil {
		return def
	}
	return f
}
