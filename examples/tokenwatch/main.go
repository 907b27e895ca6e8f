// Command tokenwatch is an example consumer built on the tokenfile package:
// it follows a token file and prints one line for each token change it
// observes. It names tokens by their fingerprint, never by their value.
//
//	tokenwatch --token-file /var/run/ambient/token
//
// Flags, each with an environment fallback (a flag wins over its variable):
//
//	--token-file PATH   TOKEND_TOKEN_FILE         the token file to follow (required)
//	--poll-interval D   TOKENWATCH_POLL_INTERVAL  re-read the file this often whatever
//	                                              the file events say (default 30s)
//
// Each change is a line on standard output: the time, the new token's
// fingerprint (the first 12 hex digits of its SHA-256), the previous one's,
// and the expiry when the token is a JWT with an exp claim:
//
//	2026-11-28T21:07:08Z token changed fingerprint=3f2a9c01d4e7 previous=none expires=2026-11-28T21:07:18Z (in 10s)
//
// When tokend withdraws the token (the control plane definitively refused
// the credential), the line says so, with tokend's reason:
//
//	2026-11-28T21:09:30Z token withdrawn previous=3f2a9c01d4e7 reason="token endpoint answered 403 Forbidden: runner access revoked"
//
// A file that does not exist yet is waited for. Problems with the file
// (missing, empty, invalid) are logged on standard error when they start,
// and the last good token is kept.
//
// Exit status: 0 after SIGINT or SIGTERM, 2 for invalid flags.
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
	"strings"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/tokenfile"
)

func main() {
	os.Exit(exitCode(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}

// usageError is an error in the flags or their variables: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCode maps run's error to the exit status, printing the error.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "tokenwatch:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "tokenwatch:", err)
		return 1
	}
}

// run is tokenwatch without the process: it follows the token file until
// ctx ends or a signal arrives, printing each change to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "tokenwatch")
	var w *tokenfile.Watcher
	p := &printer{out: stdout, now: time.Now, previous: "none"}
	w, err = tokenfile.New(cfg.tokenFile,
		tokenfile.WithPollInterval(cfg.poll),
		tokenfile.WithLogger(log),
		tokenfile.WithOnChange(func(string) { p.print(w.Current()) }))
	if err != nil {
		return &usageError{err}
	}
	log.Info("watching", "path", w.Path(), "poll_interval", cfg.poll)
	err = w.Run(ctx)
	log.Info("stopped")
	return err
}

// printer writes one line per token change. It is used only from the
// Watcher's Run goroutine.
type printer struct {
	out      io.Writer
	now      func() time.Time
	previous string // fingerprint of the token printed last
}

func (p *printer) print(s tokenfile.Snapshot) {
	now := p.now().UTC()
	if errors.Is(s.Err, tokenfile.ErrWithdrawn) {
		_, reason, _ := strings.Cut(s.Err.Error(), tokenfile.ErrWithdrawn.Error()+": ")
		fmt.Fprintf(p.out, "%s token withdrawn previous=%s reason=%q\n", now.Format(time.RFC3339), p.previous, reason)
		p.previous = "none"
		return
	}
	expires := "unknown"
	if !s.Expiry.IsZero() {
		expires = fmt.Sprintf("%s (in %s)", s.Expiry.UTC().Format(time.RFC3339), s.Expiry.Sub(now).Round(time.Second))
		if s.Expired(now) {
			expires = fmt.Sprintf("%s (expired %s ago)", s.Expiry.UTC().Format(time.RFC3339), now.Sub(s.Expiry).Round(time.Second))
		}
	}
	fp := s.Fingerprint()
	fmt.Fprintf(p.out, "%s token changed fingerprint=%s previous=%s expires=%s\n",
		now.Format(time.RFC3339), fp, p.previous, expires)
	p.previous = fp
}

// config is tokenwatch's settings.
type config struct {
	tokenFile string
	poll      time.Duration
}

// parse reads the flags, falling back on the environment, and reports
// every problem at once.
func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("tokenwatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.tokenFile, "token-file", getenv("TOKEND_TOKEN_FILE"),
		"the token file to follow (env TOKEND_TOKEN_FILE)")
	pollEnv := getenv("TOKENWATCH_POLL_INTERVAL")
	var envErr error
	cfg.poll = tokenfile.DefaultPollInterval
	if pollEnv != "" {
		if cfg.poll, envErr = time.ParseDuration(pollEnv); envErr != nil {
			envErr = fmt.Errorf("TOKENWATCH_POLL_INTERVAL: %q is not a duration", pollEnv)
		}
	}
	fs.DurationVar(&cfg.poll, "poll-interval", cfg.poll,
		"re-read the file this often whatever the events say (env TOKENWATCH_POLL_INTERVAL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, &usageError{err}
	}
	pollSet := false
	fs.Visit(func(f *flag.Flag) { pollSet = pollSet || f.Name == "poll-interval" })
	if pollSet {
		envErr = nil // the flag wins over a bad variable
	}
	if err := cfg.validate(fs.Args(), envErr); err != nil {
		return cfg, &usageError{err}
	}
	return cfg, nil
}

func (c config) validate(extra []string, envErr error) error {
	var errs []error
	if c.tokenFile == "" {
		errs = append(errs, errors.New("TOKEND_TOKEN_FILE (--token-file): required"))
	}
	if envErr != nil {
		errs = append(errs, envErr)
	} else if c.poll <= 0 {
		errs = append(errs, fmt.Errorf("TOKENWATCH_POLL_INTERVAL (--poll-interval): must be positive, not %s", c.poll))
	}
	if len(extra) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", extra))
	}
	return errors.Join(errs...)
}
