package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/health"
	"github.com/ambient-code/tokend/internal/notify"
	"github.com/ambient-code/tokend/internal/proxy"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokendir"
	"github.com/ambient-code/tokend/internal/version"
	"github.com/ambient-code/tokend/internal/wallalarm"
)

// wiring is the refresher of run (and exec) with everything it calls and
// everything that calls it, built by wire before anything starts.
type wiring struct {
	log    *slog.Logger
	dir    *tokendir.Dir
	held   *held                         // the token stored last; Ready starts exec's child
	health net.Listener                  // nil when the health server is off
	serve  []func(context.Context) error // run's goroutines; each closes what it serves
	bound  []io.Closer                   // the listeners, closed when wire fails
	remove bool                          // --remove-on-exit
}

// wire builds run's refresher. Its observers, in the order it calls them:
//
//  1. the health monitor: probes, metrics and the status;
//  2. the held token: the proxy's source, and exec's signal to start;
//  3. the notifiers (notify.Runner): --notify-signal, --on-change, and
//     exec's --change-policy (policy);
//  4. Deps.Observer, last, so that a test woken by it sees 1-3 done.
//
// Every "refresh now" door (Deps.RefreshSignals, the refresh socket, the
// proxy) uses one OnDemand. Every listener is bound here, so that a bad or
// taken address stops the start before anything runs.
func wire(cfg *Config, d Deps, policy notify.Notifier) (_ *wiring, err error) {
	r, dir, log := prepare(cfg, d)
	w := &wiring{log: log, dir: dir, remove: cfg.Consumers.RemoveOnExit}
	defer func() {
		if err != nil {
			for _, c := range w.bound {
				c.Close()
			}
		}
	}()
	mon := health.New(dir.Verified, d.Now)
	dir.Restored = func(fp string, err error) {
		mon.Restored(err)
		if d.Restored != nil {
			d.Restored(fp, err)
		}
	}
	w.held = newHeld(refresher.NewOnDemand())
	var ns []notify.Notifier
	if k := cfg.Consumers; k.NotifySignal != 0 {
		ns = append(ns, &notify.Signal{PIDFile: k.NotifyPIDFile, Sig: k.NotifySignal})
	}
	if k := cfg.Consumers; len(k.OnChange) > 0 {
		env := inheritedEnv(cfg.SecretEnv, "TOKEND_TOKEN_FILE="+cfg.TokenFile)
		ns = append(ns, &notify.Command{Argv: k.OnChange, Env: env, Timeout: k.OnChangeTimeout, Output: os.Stderr})
	}
	if policy != nil {
		ns = append(ns, policy)
	}
	runner := notify.NewRunner(ns, log, mon.Registerer())
	r.OnDemand = w.held.od
	r.Observers = append([]refresher.Observer{mon, w.held, runner}, r.Observers...)
	adoptInit(r, dir, cfg, d.now(), log)
	w.serve = append(w.serve, dir.Run, runner.Run, r.Run)
	if cfg.HealthAddr != "" {
		w.health, err = net.Listen("tcp", cfg.HealthAddr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("health server: %w; all containers of a pod share its ports: set TOKEND_HEALTH_ADDR (--health-addr) to a free one", err)
		} else if err != nil {
			return nil, fmt.Errorf("health server: %w", err)
		}
		w.bound = append(w.bound, w.health)
		w.serve = append(w.serve, func(ctx context.Context) error { return mon.Serve(ctx, w.health, log) })
	}
	if err := w.doors(cfg, d, mon); err != nil {
		return nil, err
	}
	return w, nil
}

// run serves what wire built until ctx ends or a server fails; it then
// returns once everything has stopped (the refresher after any write in
// progress).
func (w *wiring) run(ctx context.Context, d Deps) error {
	if w.remove {
		defer func() {
			if err := w.dir.Remove(); err != nil {
				w.log.Warn("--remove-on-exit: could not remove the token file", slog.String("error", err.Error()))
			} else {
				w.log.Info("removed the token file (--remove-on-exit)", slog.String("token_file", w.dir.TokenFile()))
			}
		}()
	}
	if err := w.dir.Watch(); err != nil {
		w.log.Warn("cannot watch the token directory; checking the token file every minute instead, and retrying the watch then", slog.String("error", err.Error()))
	}
	if ln := w.health; ln != nil {
		w.log.Info("health server listening", slog.String("addr", ln.Addr().String()))
		if d.Listening != nil {
			d.Listening(ln.Addr())
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, serve := range w.serve {
		g.Go(func() error { return serve(ctx) })
	}
	return g.Wait()
}

// prepare logs the warnings and builds the token directory, removing
// temporary files left by a crashed run, and its refresher. The refresher
// tells Deps.Observer, if set, and has a wall alarm only when Deps.Now is
// the system clock; callers add their observers before Deps.Observer.
func prepare(cfg *Config, d Deps) (*refresher.Refresher, *tokendir.Dir, *slog.Logger) {
	log := cmp.Or(d.Logger, slog.Default())
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	var outs []tokendir.Output // besides the token file
	if cfg.JSONFile != "" {
		outs = append(outs, tokendir.JSON(cfg.JSONFile))
	}
	dir := tokendir.New(tokendir.Options{TokenFile: cfg.TokenFile, Mode: cfg.FileMode, Outputs: outs, Logger: log, Now: d.Now})
	if n, err := dir.CleanTemp(); err != nil {
		log.Warn("could not remove leftover temporary files", slog.String("error", err.Error()))
	} else if n > 0 {
		log.Info("removed leftover temporary files", slog.Int("count", n))
	}
	log.Info("tokend starting", slog.String("command", cfg.Command), slog.String("version", version.Get().Version),
		slog.String("auth", cfg.Auth), slog.String("token_url", exchange.SafeURL(cfg.TokenURL.String())), slog.String("token_file", cfg.TokenFile))
	r := &refresher.Refresher{Exchanger: cmp.Or(d.Exchanger, cfg.Exchanger), Sink: dir, Interval: cfg.RefreshInterval,
		MaxBackoff: cfg.MaxBackoff, Logger: log, Now: d.Now}
	if d.Observer != nil {
		r.Observers = []refresher.Observer{d.Observer}
	}
	if d.Now == nil {
		r.WallAlarm = wallalarm.New
	}
	return r, dir, log
}

// doors adds the ways to ask for an exchange now: the refresh signals,
// the refresh socket and the credential proxy (on the held token), each
// when it is configured.
func (w *wiring) doors(cfg *Config, d Deps, mon *health.Monitor) error {
	if sigs := d.RefreshSignals; sigs != nil {
		w.serve = append(w.serve, func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case sig := <-sigs:
					w.log.Info("refreshing now on signal", slog.String("signal", sig.String()))
					if _, err := w.held.od.Refresh(ctx); err != nil {
						return nil // ctx ended; the refresher logs each outcome
					}
				}
			}
		})
	}
	if path := cfg.Consumers.RefreshSocket; path != "" {
		ln, err := refreshsock.Listen(path, refreshsock.SocketMode(cfg.FileMode))
		if err != nil {
			return err
		}
		w.bound = append(w.bound, ln)
		w.log.Info("refresh socket listening", slog.String("path", path))
		w.serve = append(w.serve, func(ctx context.Context) error { return refreshsock.Serve(ctx, ln, w.held.refresh, w.log) })
	}
	if cfg.Proxy.Listen == "" {
		return nil
	}
	p, err := proxy.New(proxy.Config{Upstream: cfg.Proxy.Upstream, RootCAs: cfg.Roots, Logger: w.log, Registerer: mon.Registerer()}, w.held)
	if err != nil {
		return err
	}
	// A socket reaches the token as the file does: whoever may read the
	// file may connect, and no one else.
	ln, err := proxy.ListenMode(cfg.Proxy.Listen, refreshsock.SocketMode(cfg.FileMode))
	if err != nil {
		return err
	}
	w.bound = append(w.bound, ln)
	w.log.Info("credential proxy listening", slog.String("addr", ln.Addr().String()), slog.String("upstream", exchange.SafeURL(cfg.Proxy.Upstream.String())))
	w.serve = append(w.serve, func(ctx context.Context) error { return p.Serve(ctx, ln) })
	return nil
}

// held is the token the refresher stored last, with an exchange on demand,
// readiness and withdrawal: the proxy's Source. Safe for concurrent use;
// the refresher's goroutine alone calls its Observer methods.
type held struct {
	refresher.NopObserver
	st    atomic.Pointer[heldState]
	ready chan struct{}
	once  sync.Once
	od    *refresher.OnDemand
}

// heldState is one immutable state of held.
type heldState struct {
	tok    *exchange.Token // nil while withdrawn, and before the first token
	reason string          // why the token is withdrawn; "" otherwise
	gone   context.Context // ends at the next withdrawal (ended while withdrawn)
	end    context.CancelFunc
}

func newHeld(od *refresher.OnDemand) *held {
	h := &held{ready: make(chan struct{}), od: od}
	gone, end := context.WithCancel(context.Background())
	h.st.Store(&heldState{gone: gone, end: end})
	return h
}

func (h *held) Token() (secret.String, time.Time, bool) {
	if st := h.st.Load(); st.tok != nil {
		return st.tok.Value, st.tok.Expiry, true
	}
	return secret.String{}, time.Time{}, false
}

// Ready is closed once the first token is stored.
func (h *held) Ready() <-chan struct{} { return h.ready }

// Withdrawal returns why the token is withdrawn, or "", and the context
// that ends at the withdrawal of the token held now (proxy.Source).
func (h *held) Withdrawal() (string, context.Context) {
	st := h.st.Load()
	return st.reason, st.gone
}

// Stored holds tok (refresher.Observer). A rotation keeps the context of
// the withdrawal to come; the first token after a withdrawal starts anew.
func (h *held) Stored(tok exchange.Token, _ bool) {
	cur := h.st.Load()
	next := &heldState{tok: &tok, gone: cur.gone, end: cur.end}
	if cur.reason != "" {
		next.gone, next.end = context.WithCancel(context.Background())
	}
	h.st.Store(next)
	h.once.Do(func() { close(h.ready) })
}

// Withdrawn drops the token for reason (refresher.Observer): the proxy
// sends it no more, and cuts what is in flight.
func (h *held) Withdrawn(reason string) {
	cur := h.st.Load()
	cur.end()
	h.st.Store(&heldState{reason: reason, gone: cur.gone, end: cur.end})
}

func (h *held) Refresh(ctx context.Context) error {
	_, _, err := h.refresh(ctx)
	return err
}

// refresh asks for an exchange now and waits for its outcome
// (refreshsock.RefreshFunc).
func (h *held) refresh(ctx context.Context) (changed bool, fingerprint string, err error) {
	res, err := h.od.Refresh(ctx) // res is zero when err is set
	if errors.Is(err, refresher.ErrNotRunning) {
		err = refreshsock.ErrNotRunning
	} else if err == nil {
		err = res.Err
	}
	return res.Changed, res.Fingerprint, err
}

// inheritedEnv is tokend's environment without its own credentials (the
// variables named in secrets), with set ("NAME=value") in place of any
// value it held for those names (a duplicate name would leave the choice
// to each program's getenv).
func inheritedEnv(secrets []string, set ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(secrets, name) || slices.ContainsFunc(set, func(s string) bool { return strings.HasPrefix(s, name+"=") })
	})
	return append(env, set...)
}
