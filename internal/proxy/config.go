package proxy

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ambient-code/tokend/internal/listen"
)

// Defaults for the zero values of Config's limits.
const (
	DefaultMaxHeaderBytes = 32 << 10
	DefaultMaxConcurrent  = 256
	DefaultFirstTokenWait = 10 * time.Second
	DefaultMaxReplayBytes = 64 << 10
)

// Fixed bounds of the proxy, which no setting changes.
const (
	maxConns              = DefaultMaxConcurrent + 32 // every request in flight has its connection, and 32 more may be idle or sending their header
	maxIdleConns          = 64                        // idle keep-alive connections to the upstream
	idleConnTimeout       = 90 * time.Second          // closes an idle upstream connection
	readHeaderTimeout     = 10 * time.Second          // reading a client's request header
	idleTimeout           = 120 * time.Second         // closes an idle client keep-alive connection
	dialTimeout           = 10 * time.Second          // connecting to the upstream, TLS handshake included
	responseHeaderTimeout = 2 * time.Minute           // the upstream's response header, once the request is sent; bodies and streams have no deadline
	refreshWait           = 5 * time.Second           // one Source.Refresh made for a request (after a 401, or an expired token)
	max401Refreshes       = 2                         // exchanges that 401s from the upstream may cause in any minute (package doc, step 6)
	minRemaining          = time.Second               // a token with less left before its expiry counts as expired, so it does not expire on the way
	retryAfter            = time.Second               // the Retry-After sent with a 503
)

// Config configures a Proxy. Only Upstream is required; every zero limit
// takes the Default of the same name.
type Config struct {
	// Upstream is the platform API server every request goes to (http or
	// https; request paths are joined under its path), as ParseUpstream
	// parses it from --proxy-upstream or AMBIENT_API_SERVER_URL.
	Upstream *url.URL

	// RootCAs verifies the upstream's TLS certificate: the same pool the
	// exchange uses. Nil means the system roots.
	RootCAs *x509.CertPool

	// MaxHeaderBytes bounds a request's header block; a larger one gets 431.
	// A header of more than 100 fields gets 431 too.
	MaxHeaderBytes int
	// MaxConcurrent bounds requests in flight, streams included. A request
	// beyond it is answered 503 with Retry-After at once, never queued.
	// Client connections are bounded at DefaultMaxConcurrent + 32; at the
	// cap a new one closes the idlest (see package listen).
	MaxConcurrent int
	// FirstTokenWait is how long a request waits for the first token; then 503.
	FirstTokenWait time.Duration
	// MaxReplayBytes is the largest request body, of declared length, held in
	// memory so that it can be sent again after a 401. A longer body, or
	// one of unknown length (chunked), streams and is never retried.
	MaxReplayBytes int64

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives the proxy's log lines (requests at debug only); nil
	// discards them.
	Logger *slog.Logger
	// Registerer receives the proxy's metrics. Nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// limits are the bounds of the client side's listener.
func (c Config) limits() listen.Limits {
	return listen.Limits{MaxConns: maxConns, MaxHeaderBytes: cmp.Or(c.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout} // and listen's 5 s shutdown
}

// MemoryBound is the most the client connections of a Proxy with c can
// cost, in bytes, whatever the clients send (listen.Limits.MemoryBound);
// the requests in flight, at most MaxConcurrent, add their bodies'
// buffers and upstream connections.
func (c Config) MemoryBound() int64 { return c.limits().MemoryBound() }

// ParseUpstream parses and checks the upstream URL given by --proxy-upstream
// or AMBIENT_API_SERVER_URL: an absolute http or https URL with a host, no
// user info, query or fragment. Its errors name the setting and the fix and
// hold no user info.
func ParseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("proxy: --proxy-upstream (or AMBIENT_API_SERVER_URL) is not a URL: give the API server's URL, e.g. https://api.example:443")
	}
	if err := checkUpstream(u); err != nil {
		return nil, err
	}
	return u, nil
}

func checkUpstream(u *url.URL) error {
	const setting = "proxy: --proxy-upstream (or AMBIENT_API_SERVER_URL)"
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s has scheme %q: use an http:// or https:// URL", setting, u.Scheme)
	case u.Host == "":
		return fmt.Errorf("%s has no host: give the API server's host, e.g. https://api.example", setting)
	case u.User != nil:
		return fmt.Errorf("%s carries user info: remove it; the proxy sends the token as the only credential", setting)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("%s has a query or fragment: give the base URL only", setting)
	}
	return nil
}

// ListenMode opens the proxy's listener for addr, as given by --proxy-listen:
//
//   - "unix:PATH": a Unix socket at PATH with mode (connecting needs
//     write permission), as listen.Unix makes it.
//   - "HOST:PORT": TCP, where HOST is a loopback address (127.0.0.0/8, ::1)
//     or "localhost". Any other host, an empty one included, is refused:
//     the proxy adds the token to every request it gets, so only this pod
//     may reach it. PORT 0 picks a free port.
//
// Errors name --proxy-listen and say the fix.
func ListenMode(addr string, mode fs.FileMode) (net.Listener, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, fmt.Errorf("proxy: --proxy-listen %w", err)
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		ln, err := listen.Unix(path, mode, "--proxy-listen")
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: --proxy-listen %q: %w: choose a free port", addr, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("proxy: --proxy-listen %q resolved to %s, not a loopback address: use 127.0.0.1:PORT", addr, ln.Addr())
	}
	return ln, nil
}

// CheckAddr returns why Listen refuses addr by its form alone, without
// binding it: neither HOST:PORT nor unix:PATH, a host that is not
// loopback, or no path. The error is a phrase that quotes addr and says
// the fix, for the caller to prefix with the setting's name.
func CheckAddr(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return errors.New(`"unix:" has no path: use unix:PATH, e.g. unix:/var/run/tokend/proxy.sock`)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is neither HOST:PORT nor unix:PATH: use 127.0.0.1:PORT or unix:PATH", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address, and the proxy adds the token to every request it gets: use 127.0.0.1:PORT, [::1]:PORT or unix:PATH", addr)
	}
	return nil
}
