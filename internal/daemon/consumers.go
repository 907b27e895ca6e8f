package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/health"
	"github.com/ambient-code/tokend/internal/notify"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/tokendir"
)

// execHooks connects Run to the child of Exec: ready is closed when the
// first token is stored, and changes receives (coalesced) on each change.
type execHooks struct {
	ready   chan struct{}
	changes chan struct{}
}

// addConsumers wires what serves consumers that cannot watch the token
// file into r (run and exec): the notifiers, the exec child's hooks and
// the refresh socket. Their goroutines join g. It returns the cleanup Run
// defers: --remove-on-exit.
func addConsumers(ctx context.Context, g *errgroup.Group, cfg *Config, d Deps, r *refresher.Refresher, mon *health.Monitor, dir *tokendir.Dir) (func(), error) {
	k := cfg.Consumers
	log := r.Logger
	if k.RefreshSocket != "" { // first: the one step here that can fail
		ln, err := refreshsock.Listen(k.RefreshSocket, refreshsock.SocketMode(cfg.FileMode))
		if err != nil {
			return nil, err
		}
		log.Info("refresh socket listening", slog.String("path", k.RefreshSocket))
		if r.OnDemand == nil {
			r.OnDemand = refresher.NewOnDemand()
		}
		od := r.OnDemand
		g.Go(func() error { return refreshsock.Serve(ctx, ln, onDemand(od), log) })
	}
	var observers []func()
	if ns := notifiers(cfg); len(ns) > 0 {
		runner, err := notify.NewRunner(ns, log, mon.Registerer())
		if err != nil {
			return nil, fmt.Errorf("notifiers: %w", err)
		}
		observers = append(observers, runner.Changed)
		g.Go(func() error { return runner.Run(ctx) })
	}
	var first func()
	if ex := d.exec; ex != nil {
		first = func() { close(ex.ready) }
		observers = append(observers, func() {
			select {
			case ex.changes <- struct{}{}:
			default:
			}
		})
	}
	r.Observers = append(r.Observers, &changes{first: first, observers: observers})
	return func() {
		if k.RemoveOnExit {
			removeOutputs(dir, log)
		}
	}, nil
}

// changes calls first on the first token stored, and each observer on
// every later store of a different token (a lost file written again with
// the same token is no change). The functions must not block. It is a
// refresher.Observer, for the refresher's goroutine only.
type changes struct {
	refresher.NopObserver
	first     func()
	observers []func()
	last      string // the fingerprint of the token stored last
}

func (c *changes) Stored(tok exchange.Token, _ bool) {
	fp := tok.Value.Fingerprint()
	switch {
	case fp == c.last:
	case c.last == "":
		c.last = fp
		if c.first != nil {
			c.first()
		}
	default:
		c.last = fp
		for _, o := range c.observers {
			o()
		}
	}
}

func onDemand(od *refresher.OnDemand) refreshsock.RefreshFunc {
	return func(ctx context.Context) (bool, string, error) {
		res, err := od.Refresh(ctx)
		switch {
		case errors.Is(err, refresher.ErrNotRunning):
			return false, "", refreshsock.ErrNotRunning
		case err != nil:
			return false, "", err
		}
		return res.Changed, res.Fingerprint, res.Err
	}
}

func notifiers(cfg *Config) []notify.Notifier {
	k := cfg.Consumers
	var ns []notify.Notifier
	if k.NotifySignal != 0 {
		ns = append(ns, &notify.Signal{PIDFile: k.NotifyPIDFile, Sig: k.NotifySignal})
	}
	if len(k.OnChange) > 0 {
		env := append(inheritedEnv(append(slices.Clip(cfg.SecretEnv), "TOKEND_TOKEN_FILE")), "TOKEND_TOKEN_FILE="+cfg.TokenFile)
		ns = append(ns, &notify.Command{Argv: k.OnChange, Env: env, Timeout: k.OnChangeTimeout, Output: os.Stderr})
	}
	return ns
}

// inheritedEnv is tokend's environment without the named variables: its
// own credentials, and those the caller sets afresh (a duplicate name
// would leave the choice to each program's getenv).
func inheritedEnv(drop []string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, name)
	})
}

// removeOutputs removes the token file and the other outputs.
func removeOutputs(dir *tokendir.Dir, log *slog.Logger) {
	if err := dir.Remove(); err != nil {
		log.Warn("--remove-on-exit: could not remove the token file", slog.String("error", err.Error()))
		return
	}
	log.Info("removed the token file (--remove-on-exit)", slog.String("token_file", dir.TokenFile()))
}
