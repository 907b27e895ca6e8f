// Package proxy is tokend's credential proxy: a reverse proxy on a loopback
// address or a Unix socket that attaches the current token to each request
// and forwards it to one configured upstream, the platform API server. The
// process that talks to it never holds the token.
//
// For each request, in order (docs/credential-proxy.md states each step
// in full, with the table of the proxy's answers):
//
//  1. Not origin-form, or a path with a dot segment in any encoding: 400/405.
//  2. Beyond Config.MaxConcurrent requests in flight: 503 at once.
//  3. A token not near its expiry, or 503 (none in time), or 403 (withdrawn).
//  4. The client's credentials and Forwarded headers give way to the token.
//  5. Bodies stream both ways unbuffered; a client gone cancels upstream.
//  6. An upstream 401 is retried once with a fresh token, exchanges bounded.
//
// The proxy never answers 401, nor passes on the upstream's: MCP clients
// and SDKs read a 401 as "credentials required" and drop the server. Its
// own answers are one line of plain text, each 503 with Retry-After.
//
// Logs never carry the token; request lines are logged at debug only.
package proxy

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/ambient-code/tokend/internal/listen"
	"github.com/ambient-code/tokend/internal/secret"
)

// Source is where the proxy gets the token: the daemon that holds it. Its
// methods are called from many goroutines at once and must be safe for it.
type Source interface {
	// Token returns the current token and its expiry (the zero time when
	// unknown); ok is false before the first token.
	Token() (tok secret.String, expiry time.Time, ok bool)
	// Refresh asks for an exchange now and returns when it finished, or
	// when ctx ends. Callers may call it often and at once: the Source
	// coalesces the calls and holds them to its minimum interval. An error
	// means no fresh token came; Token still returns the best one held.
	Refresh(ctx context.Context) error
	// Ready returns a channel closed once the first token is held.
	Ready() <-chan struct{}
	// Withdrawal returns why the token is withdrawn (the control plane
	// definitively refused the credential), "" while it is not, and a
	// context that ends once the token held now is withdrawn (already
	// ended while it is). Token returns no token while it is withdrawn.
	Withdrawal() (reason string, gone context.Context)
}

// Proxy is the credential proxy. It is an http.Handler; Serve runs it as
// a server. It is safe for concurrent use.
type Proxy struct {
	cfg     Config
	src     Source
	rp      *httputil.ReverseProxy
	base    *http.Transport
	sem     chan struct{} // one slot per request in flight
	metrics *metrics
	reauth  reauth
}

// New returns a Proxy forwarding to cfg.Upstream with tokens from src. Its
// error lists every problem with cfg and src, with the setting and the fix.
func New(cfg Config, src Source) (*Proxy, error) {
	var errs []error
	if cfg.Upstream == nil {
		errs = append(errs, errors.New("proxy: no upstream: set --proxy-upstream or AMBIENT_API_SERVER_URL to the API server's URL"))
	} else if err := checkUpstream(cfg.Upstream); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxHeaderBytes < 0 || cfg.MaxConcurrent < 0 || cfg.MaxReplayBytes < 0 {
		errs = append(errs, errors.New("proxy: a size or count limit is negative: set it to a positive number, or 0 for the default"))
	}
	if src == nil {
		errs = append(errs, errors.New("proxy: no token source: pass the daemon's token holder to proxy.New"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.MaxHeaderBytes = cmp.Or(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	cfg.MaxConcurrent = cmp.Or(cfg.MaxConcurrent, DefaultMaxConcurrent)
	cfg.MaxReplayBytes = cmp.Or(cfg.MaxReplayBytes, DefaultMaxReplayBytes)
	cfg.FirstTokenWait = cmp.Or(cfg.FirstTokenWait, DefaultFirstTokenWait)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, src: src, sem: make(chan struct{}, cfg.MaxConcurrent), metrics: m, base: newTransport(cfg)}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      retryTransport{p},
		FlushInterval:  -1,
		BufferPool:     &bufferPool{sync.Pool{New: func() any { return new([copyBufferSize]byte) }}},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// Serve serves the proxy on ln, within the bounds of Config.MaxConcurrent
// and package listen, until ctx ends; then requests in flight get 5 s to
// finish and what is left (streams, tunnels) is cut. It closes ln and
// returns nil when ctx ended, or the error that stopped the server.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	defer p.base.CloseIdleConnections()
	return (&listen.Server{Handler: p, Limits: p.cfg.limits(), ErrorLog: p.rp.ErrorLog}).Serve(ctx, ln)
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.cfg.Upstream)
	pr.Out.Header.Del("Proxy-Authorization")
	pr.Out.Header.Set("Authorization", "Bearer "+stateOf(pr.In.Context()).token.Reveal()) // replaces the client's
}
