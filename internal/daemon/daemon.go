// Package daemon wires tokend's parts into its commands: init (one token,
// then exit), run (keep the token fresh) and check (judge the token on disk).
//
// Every function returns its error to the caller, which logs it once and maps
// it to an exit status; nothing here logs an error it returns.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/filewriter"
	"github.com/ambient-code/tokend/internal/health"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
	"github.com/ambient-code/tokend/internal/tokendir"
	"github.com/ambient-code/tokend/internal/version"
)

// Deps are what the commands take from outside besides the configuration.
// Zero fields get production values.
type Deps struct {
	// Logger receives the commands' log lines.
	Logger *slog.Logger
	// Exchanger replaces the one built from the configuration (tests).
	Exchanger exchange.Exchanger
	// Now is the wall clock; time.Now when nil.
	Now func() time.Time
	// HealthListening, when set, learns the health server's address once
	// it listens (tests listen on port 0).
	HealthListening func(net.Addr)

	exec *execHooks // set by Exec (consumers.go)
	// OnDemand, when set, carries requests for an exchange now to run's
	// refresher (SIGHUP and SIGUSR1).
	OnDemand *refresher.OnDemand
	// Observe, when set, receives every step of Init and Run as an Event,
	// in order, on the goroutine that takes the step (the refresher's, or
	// Run's for HealthListening). It must not block. Tests wait on it
	// instead of polling files and clocks.
	Observe func(Event)
}

func (d Deps) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// Init obtains one token within cfg.InitTimeout, writes it, reads it back
// and returns. A permanent refusal returns at once.
func Init(ctx context.Context, cfg *Config, d Deps) error {
	dir, r, err := prepare(cfg, d)
	if err != nil {
		return err
	}
	r.Observers = append(r.Observers, d.observer())
	ctx, cancel := context.WithTimeout(ctx, cfg.InitTimeout)
	defer cancel()
	tok, err := r.Once(ctx)
	if err != nil {
		return err
	}
	if err := dir.Verify(tok); err != nil {
		return fmt.Errorf("reading the token back: %w", err)
	}
	return nil
}

// Run keeps the token fresh, writes it again as soon as the token file is
// removed or replaced between refreshes (watching the directory, with a
// check every minute as a fallback), and serves probes and metrics on
// cfg.HealthAddr, until ctx ends; it then returns nil once any write in
// progress has finished. It returns an error only when it cannot start or
// the health server fails.
func Run(ctx context.Context, cfg *Config, d Deps) error {
	dir, r, err := prepare(cfg, d)
	if err != nil {
		return err
	}
	r.Interval = cfg.RefreshInterval
	r.OnDemand = d.OnDemand
	mon := health.New(dir, d.Now)
	mon.ErrorLog = slog.NewLogLogger(r.Logger.Handler(), slog.LevelWarn)
	r.Observers = append(r.Observers, mon)
	g, ctx := errgroup.WithContext(ctx)
	// Listen before starting anything: a taken port returns here, before
	// any goroutine starts that only g.Wait would end.
	var health net.Listener
	if cfg.HealthAddr != "" {
		ln, err := net.Listen("tcp", cfg.HealthAddr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("health server: %w; all containers of a pod share its ports: set TOKEND_HEALTH_ADDR (--health-addr) to a free one", err)
		} else if err != nil {
			return fmt.Errorf("health server: %w", err)
		}
		health = ln
		defer func() {
			if health != nil { // not served: Run failed before the end
				health.Close()
			}
		}()
	}
	// Consumers that cannot watch the file: notifiers, exec, the refresh
	// socket, --remove-on-exit (consumers.go).
	cleanup, err := addConsumers(ctx, g, cfg, d, r, mon, dir)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := addProxy(ctx, g, cfg, r, mon); err != nil {
		return err
	}
	if err := dir.Watch(); err != nil {
		r.Logger.Warn("cannot watch the token directory; checking the token file every minute instead, and retrying the watch then", slog.String("error", err.Error()))
	}
	g.Go(func() error { return dir.Run(ctx) })
	if ln := health; ln != nil {
		health = nil
		r.Logger.Info("health server listening", slog.String("addr", ln.Addr().String()))
		if d.HealthListening != nil {
			d.HealthListening(ln.Addr())
		}
		d.emit(Event{Kind: HealthListening, Addr: ln.Addr()})
		g.Go(func() error { return mon.Serve(ctx, ln) })
	}
	r.Observers = append(r.Observers, d.observer()) // last: see observer
	g.Go(func() error { return r.Run(ctx) })
	return g.Wait()
}

// prepare builds the token directory and the refresher, and removes
// temporary files left by a crashed run.
func prepare(cfg *Config, d Deps) (*tokendir.Dir, *refresher.Refresher, error) {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	ex := d.Exchanger
	if ex == nil {
		ex = cfg.Exchanger
	}
	dir := tokendir.New(tokendir.Options{TokenFile: cfg.TokenFile, Mode: cfg.FileMode, Outputs: outputs(cfg), Logger: log, Now: d.Now})
	if n, err := dir.CleanTemp(); err != nil {
		log.Warn("could not remove leftover temporary files", slog.String("error", err.Error()))
	} else if n > 0 {
		log.Info("removed leftover temporary files", slog.Int("count", n))
	}
	r := &refresher.Refresher{
		Exchanger:  ex,
		Sink:       dir,
		MaxBackoff: cfg.MaxBackoff,
		Logger:     log,
		Now:        d.Now,
	}
	log.Info("tokend starting", slog.String("command", cfg.Command), slog.String("version", version.Get().Version),
		slog.String("auth", cfg.Auth), slog.String("token_url", exchange.SafeURL(cfg.TokenURL.String())), slog.String("token_file", cfg.TokenFile))
	return dir, r, nil
}

// outputs are the token directory's outputs besides the token file. The
// shared directory holds only what consumers read: what `check` needs
// besides the file, the running daemon serves on its probe listener
// (health.StatusPath).
func outputs(cfg *Config) []tokendir.Output {
	var outs []tokendir.Output
	if cfg.Outputs.JSONFile != "" {
		outs = append(outs, tokendir.JSON(cfg.Outputs.JSONFile))
	}
	return outs
}

// ErrCheck is wrapped by every reason Check finds the token unfit.
var ErrCheck = errors.New("token not usable")

// statusTimeout bounds Check's question to the running daemon.
const statusTimeout = 2 * time.Second

// Check judges the token file: it must be a regular file holding a
// well-formed token that has not expired. The expiry comes from the token's
// JWT exp claim, or else from the running daemon (`tokend run`, asked on
// cfg.HealthAddr) when it describes the same token. With cfg.MaxAge > 0 the
// daemon must also report a successful exchange at most MaxAge ago. Check
// never blocks longer than statusTimeout on the daemon, and reads nothing
// but the token file. It returns a one-line description of a good token.
func Check(cfg *Config, d Deps) (string, error) {
	tf := filewriter.New(cfg.TokenFile, 0)
	data, err := tf.Read()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCheck, err)
	}
	// The rule every reader of the file follows (tokenfile's).
	tok, err := tokenbytes.FromFile(data)
	switch {
	case errors.Is(err, tokenbytes.ErrEmpty):
		return "", fmt.Errorf("%w: token file %s is empty", ErrCheck, cfg.TokenFile)
	case errors.Is(err, tokenbytes.ErrTooLong):
		return "", fmt.Errorf("%w: token file %s is %w", ErrCheck, cfg.TokenFile, err)
	case err != nil:
		return "", fmt.Errorf("%w: token file %s has %w (it holds the token and optionally line feeds, nothing else)", ErrCheck, cfg.TokenFile, err)
	}
	fp := secret.Fingerprint(tok)
	now := d.now()
	var st health.Status
	stErr := errors.New("the health listener is disabled (TOKEND_HEALTH_ADDR is empty)")
	if cfg.HealthAddr != "" {
		st, stErr = health.FetchStatus(context.Background(), cfg.HealthAddr, statusTimeout)
	}
	exp, source := tokenExpiry(tok, st, stErr)
	if !exp.IsZero() && !now.Before(exp) {
		return "", fmt.Errorf("%w: token %s expired at %s (%s)", ErrCheck, fp, exp.Format(time.RFC3339), source)
	}
	if cfg.MaxAge > 0 {
		if stErr != nil {
			return "", fmt.Errorf("%w: --max-age needs the status of tokend run: %w; run check in the pod of a tokend run sidecar with the same TOKEND_HEALTH_ADDR", ErrCheck, stErr)
		}
		if age := now.Sub(st.LastSuccess); age > cfg.MaxAge {
			return "", fmt.Errorf("%w: last successful exchange %s ago, more than --max-age %s", ErrCheck, age.Round(time.Second), cfg.MaxAge)
		}
	}
	desc := "token " + fp
	if !exp.IsZero() {
		desc += fmt.Sprintf(" expires in %s", exp.Sub(now).Round(time.Second))
	}
	return desc, nil
}
