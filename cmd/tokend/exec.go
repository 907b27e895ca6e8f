package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/refreshsock"
)

// execCommand runs `tokend exec [flags] -- CMD [ARGS...]` and exits with
// the command's status.
func execCommand(ctx context.Context, o *options, log *slog.Logger) error {
	// Registered here, beside run's NotifyContext: Exec ignores the end of
	// ctx and forwards these to the child instead.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// SIGHUP and SIGUSR1 ask for an exchange now, as they do for run;
	// unhandled, SIGHUP would end tokend and leave the command running.
	refresh, stop := refreshSignals()
	defer stop()
	d := daemon.Deps{Logger: log, RefreshSignals: refresh}
	code, err := daemon.Exec(ctx, &o.Config, d, daemon.ExecDeps{Signals: sigs})
	if err != nil {
		log.Error("exec failed", slog.String("error", err.Error()))
		return &exitError{code: max(code, 1), err: err}
	}
	log.Info("command exited", slog.Int("code", code))
	if code != 0 {
		return &exitError{code: code, err: fmt.Errorf("command exited with status %d", code)}
	}
	return nil
}

// refreshCommand runs `tokend refresh`: it asks the running tokend for an
// exchange now and prints the outcome; exit 0 on success, 1 on failure.
func refreshCommand(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	path := o.Consumers.RefreshSocket
	if path == "" {
		path = refreshsock.DefaultPath(o.TokenFile)
	}
	ctx, cancel := context.WithTimeout(ctx, o.refreshTimeout)
	defer cancel()
	resp, err := refreshsock.Request(ctx, path)
	if err != nil {
		fmt.Fprintln(stderr, "tokend refresh:", err)
		return &exitError{code: 1, err: err}
	}
	state := "unchanged"
	if resp.Changed {
		state = "changed"
	}
	fmt.Fprintf(stdout, "ok: token %s %s\n", resp.Fingerprint, state)
	return nil
}
