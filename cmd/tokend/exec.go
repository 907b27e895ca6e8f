package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ambient-code/tokend/internal/config"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/refreshsock"
)

// execCommand runs `tokend exec [flags] -- CMD [ARGS...]` and exits with
// the command's status.
func execCommand(ctx context.Context, args []string, lookupenv func(string) (string, bool), stderr io.Writer) error {
	cfg, err := config.ParseExecEnv(args, lookupenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	defer reapAsInit(log)() // process.go
	// Registered here, beside run's NotifyContext: Exec ignores the end of
	// ctx and forwards these to the child instead.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// SIGHUP and SIGUSR1 ask for an exchange now, as they do for run;
	// unhandled, SIGHUP would end tokend and leave the command running.
	d := daemon.Deps{Logger: log, OnDemand: refresher.NewOnDemand()}
	stop := onRefreshSignals(ctx, d.OnDemand, log)
	defer stop()
	code, err := daemon.Exec(ctx, cfg, d, daemon.ExecDeps{Signals: sigs})
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
func refreshCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse(config.CmdRefresh, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	path := cfg.Consumers.RefreshSocket
	if path == "" {
		path = refreshsock.DefaultPath(cfg.TokenFile)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.RefreshTimeout)
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
