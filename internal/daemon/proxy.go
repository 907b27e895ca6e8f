package daemon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/health"
	"github.com/ambient-code/tokend/internal/proxy"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/secret"
)

// held is the proxy's Source: the token the refresher stored last (it
// observes the refresher), an exchange on demand, and readiness. It is
// safe for concurrent use.
type held struct {
	refresher.NopObserver
	tok   atomic.Pointer[exchange.Token]
	ready chan struct{}
	once  sync.Once
	od    *refresher.OnDemand
}

func (h *held) Token() (secret.String, time.Time, bool) {
	t := h.tok.Load()
	if t == nil {
		return secret.String{}, time.Time{}, false
	}
	return t.Value, t.Expiry, true
}

func (h *held) Ready() <-chan struct{} { return h.ready }

// Stored holds tok (refresher.Observer).
func (h *held) Stored(tok exchange.Token, _ bool) {
	h.tok.Store(&tok)
	h.once.Do(func() { close(h.ready) })
}

func (h *held) Refresh(ctx context.Context) error {
	res, err := h.od.Refresh(ctx)
	if err != nil {
		return err
	}
	return res.Err
}

// addProxy starts the credential proxy of cfg.Proxy, when it is set, on
// the token r stores: it binds the listener now, so that a bad or taken
// address stops the start, and serves in g until ctx ends.
func addProxy(ctx context.Context, g *errgroup.Group, cfg *Config, r *refresher.Refresher, mon *health.Monitor) error {
	if cfg.Proxy.Listen == "" {
		return nil
	}
	if r.OnDemand == nil {
		r.OnDemand = refresher.NewOnDemand()
	}
	h := &held{ready: make(chan struct{}), od: r.OnDemand}
	r.Observers = append(r.Observers, h)
	p, err := proxy.New(proxy.Config{Upstream: cfg.Proxy.Upstream, RootCAs: cfg.Roots, Logger: r.Logger, Registerer: mon.Registerer()}, h)
	if err != nil {
		return err
	}
	// A socket reaches the token as the file does: whoever may read the
	// file may connect, and no one else.
	ln, err := proxy.ListenMode(cfg.Proxy.Listen, refreshsock.SocketMode(cfg.FileMode))
	if err != nil {
		return err
	}
	r.Logger.Info("credential proxy listening", slog.String("addr", ln.Addr().String()), slog.String("upstream", exchange.SafeURL(cfg.Proxy.Upstream.String())))
	g.Go(func() error { return p.Serve(ctx, ln) })
	return nil
}
