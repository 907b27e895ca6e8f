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
	"golang.org/x/sys/unix"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/proc"
	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/version"
)

// exitError carries an error, already logged unless code is 2, with its
// exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run is tokend without the process: it parses args and environ (as
// os.Environ gives them), runs one command and returns its error. Signals
// end run alone, so every deferred cleanup happens before main exits.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A reader of stdout or stderr that goes away (a log shipper
	// restarting) must not end tokend at its next log line: with SIGPIPE
	// ignored, such a write fails with EPIPE, which the log handler drops.
	signal.Ignore(syscall.SIGPIPE)
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch {
	case cmd == "version" || cmd == "--version" || cmd == "-version":
		fmt.Fprintln(stdout, version.Get())
		return nil
	case cmd == "help" || cmd == "-h" || cmd == "--help" || cmd == "-help":
		usage(stdout)
		return nil
	case summaries[cmd] == "":
		usage(stderr)
		if cmd == "" {
			return &exitError{code: 2, err: errors.New("no command given")}
		}
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q", cmd)}
	}
	// Help that was asked for goes to stdout, as `tokend help` does; usage
	// errors go to stderr.
	var msgs bytes.Buffer
	o, err := load(cmd, args[1:], environ, &msgs)
	if errors.Is(err, flag.ErrHelp) {
		msgs.WriteTo(stdout)
		return nil
	}
	msgs.WriteTo(stderr)
	if err != nil {
		return err
	}
	log := newLogger(o.logFormat, o.logLevel, stderr)
	if os.Getpid() == 1 { // reap the orphans re-parented to PID 1 (an --on-change program's children)
		defer proc.Adopt(func(pid int) { log.Debug("reaped an orphan process", slog.Int("pid", pid)) })()
	}
	d := daemon.Deps{Logger: log}
	if cmd == "run" || cmd == "exec" {
		// SIGHUP and SIGUSR1 ask for an exchange now; unhandled, SIGHUP
		// would end tokend (and leave exec's command running).
		refresh := make(chan os.Signal, 1)
		signal.Notify(refresh, syscall.SIGHUP, syscall.SIGUSR1)
		defer signal.Stop(refresh)
		d.RefreshSignals = refresh
	}
	if cmd == "refresh" {
		return refreshCommand(ctx, o, stdout, stderr)
	}
	code, err := command(ctx, o, d, stdout)
	if err != nil {
		log.Error(cmd+" failed", slog.String("error", err.Error()))
		return &exitError{code: max(code, 1), err: err}
	}
	if cmd == "exec" {
		log.Info("command exited", slog.Int("code", code))
	}
	if code != 0 {
		return &exitError{code: code, err: fmt.Errorf("command exited with status %d", code)}
	}
	return nil
}

// command runs init, run, exec or check; exec returns its command's exit
// status.
func command(ctx context.Context, o *options, d daemon.Deps, stdout io.Writer) (int, error) {
	cfg := &o.Config
	switch cfg.Command {
	case "init":
		err := daemon.Init(ctx, cfg, d)
		if err != nil && ctx.Err() == nil && exchange.Retryable(err) {
			err = fmt.Errorf("%w; the control plane gave no token within TOKEND_INIT_TIMEOUT (--init-timeout) %s: "+
				"make sure the pod reaches AMBIENT_CP_TOKEN_URL (the attempts are logged above), or raise the timeout", err, cfg.InitTimeout)
		}
		return 0, err
	case "run":
		err := daemon.Run(ctx, cfg, d)
		if err == nil {
			d.Logger.Info("stopped")
		}
		return 0, err
	case "exec":
		// Exec ignores the end of ctx and forwards these to the child instead.
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sigs)
		return daemon.Exec(ctx, cfg, d, daemon.ExecDeps{Signals: sigs})
	}
	desc, err := daemon.Check(cfg, d)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w: no token yet; tokend init or run writes it, with the same TOKEND_TOKEN_FILE (--token-file)", err)
	} else if err == nil {
		fmt.Fprintln(stdout, "ok:", desc)
	}
	return 0, err
}

// exitCode maps run's error to the process exit status, printing errors
// that were not logged already: 0 success, 1 runtime failure, 2 invalid
// configuration or usage.
func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.code != 2:
		return ee.code // logged already
	}
	fmt.Fprintln(stderr, "tokend:", err)
	if ee != nil || errors.As(err, new(*invalidError)) {
		return 2
	}
	return 1
}

// usage prints tokend's top-level help.
func usage(w io.Writer) {
	fmt.Fprint(w, "tokend keeps a control-plane API token fresh in a file.\n\nUsage: tokend <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c, summaries[c])
	}
	fmt.Fprint(w, "  version  Print the version, commit and Go version.\n  help     Print this help; 'tokend <command> -h' for a command's flags.\n\n"+
		"Every flag falls back to an environment variable; a TOKEND_ variable that names no setting is an error.\n"+
		"Exit status: 0 success, 1 runtime failure, 2 invalid configuration.\n")
}

// newLogger returns the configured handler: tint for people (colour only on
// a terminal), JSON for log pipelines, with durations in seconds.
func newLogger(format string, level slog.Level, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationSeconds}))
	}
	f, ok := w.(*os.File)
	if ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		ok = err == nil
	}
	return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.RFC3339, NoColor: !ok}))
}

// durationSeconds writes a duration as float seconds, the unit log
// pipelines and Prometheus use, instead of slog's integer nanoseconds.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
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
