package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lmittmann/tint"

	"github.com/ambient-code/tokend/internal/config"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/version"
)

// exitError carries an error that was already logged, with its exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run is runEnv for callers that cannot tell a variable set but empty from
// an unset one: for getenv, empty means unset.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}, stdout, stderr)
}

// runEnv is tokend without the process: it parses args, runs one command
// and returns its error. lookupenv has os.LookupEnv's semantics, so that
// TOKEND_HEALTH_ADDR set but empty disables the health server. Signals end
// runEnv and runEnv alone, so that every deferred cleanup happens before
// main exits.
func runEnv(ctx context.Context, args []string, lookupenv func(string) (string, bool), stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A reader of stdout or stderr that goes away (a log shipper
	// restarting) must not end tokend at its next log line: with SIGPIPE
	// ignored, such a write fails with EPIPE, which the log handler drops.
	signal.Ignore(syscall.SIGPIPE)
	if len(args) == 0 {
		config.Usage(stderr)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	switch cmd := args[0]; cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version.Get())
		return nil
	case "help", "-h", "--help", "-help":
		config.Usage(stdout)
		return nil
	case config.CmdInit, config.CmdRun, config.CmdCheck:
		// Help that was asked for goes to stdout, as `tokend help` does;
		// usage errors go to stderr.
		var msgs bytes.Buffer
		cfg, err := config.ParseEnv(cmd, args[1:], lookupenv, &msgs)
		if errors.Is(err, flag.ErrHelp) {
			msgs.WriteTo(stdout)
			return nil
		}
		msgs.WriteTo(stderr)
		if err != nil {
			return err
		}
		log := newLogger(cfg, stderr)
		defer reapAsInit(log)() // process.go
		err = command(ctx, cfg, log, stdout)
		if err != nil {
			log.Error(cmd+" failed", slog.String("error", err.Error()))
			return &exitError{code: 1, err: err}
		}
		return nil
	case config.CmdExec: // exec.go
		return execCommand(ctx, args[1:], lookupenv, stderr)
	case config.CmdRefresh: // exec.go
		return refreshCommand(ctx, args[1:], getenvOf(lookupenv), stdout, stderr)
	default:
		config.Usage(stderr)
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
	}
}

func command(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	d := daemon.Deps{Logger: log}
	switch cfg.Command {
	case config.CmdInit:
		return daemon.Init(ctx, cfg, d)
	case config.CmdRun:
		d.OnDemand = refresher.NewOnDemand()
		stop := onRefreshSignals(ctx, d.OnDemand, log)
		err := daemon.Run(ctx, cfg, d)
		stop()
		if err == nil {
			log.Info("stopped")
		}
		return err
	default:
		desc, err := daemon.Check(cfg, d)
		if err == nil {
			fmt.Fprintln(stdout, "ok:", desc)
		}
		return err
	}
}

// exitCode maps run's error to the process exit status, printing errors
// that were not logged already: 0 success, 1 runtime failure, 2 invalid
// configuration or usage.
func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	var ce *config.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.code == 2 {
			fmt.Fprintln(stderr, "tokend:", ee.err)
		}
		return ee.code
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, "tokend:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "tokend:", err)
		return 1
	}
}

// newLogger returns the configured handler: tint for people (colour only on
// a terminal), JSON for log pipelines, with durations in seconds.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: durationSeconds}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{
		Level:      cfg.LogLevel,
		TimeFormat: time.RFC3339,
		NoColor:    !isTerminal(w),
	}))
}

// durationSeconds writes a duration as float seconds, the unit log
// pipelines and Prometheus use, instead of slog's integer nanoseconds.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// getenvOf turns a lookupenv into a getenv, for the commands that do not
// tell a variable set but empty from an unset one.
func getenvOf(lookupenv func(string) (string, bool)) func(string) string {
	return func(k string) string { v, _ := lookupenv(k); return v }
}
