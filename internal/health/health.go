// Package health serves tokend's probes and metrics.
//
// A Monitor observes the refresher (it is a refresher.Observer) and the
// token directory's verdict, and answers:
//
//   - /livez: the refresh loop is alive: it has come back from an exchange
//     or a write within a minute after its last wait ended (else it is
//     wedged, and a restart is the cure).
//   - /readyz: the token is not withdrawn (no definitive refusal of the
//     credential since the last token), the last write of the token file
//     succeeded (even while the old token is intact), the token
//     directory's last verification (the probe reads no file) found the
//     token stored last in place, and that token has not expired.
//   - /startupz: the first token has been written.
//   - /metrics: Prometheus metrics from a private registry.
//
// All methods are safe for concurrent use; probes read atomics, and never
// block on the refresher or touch the disk.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/listen"
	"github.com/ambient-code/tokend/internal/refresher"
)

// limits bound the probe server (package listen) under 1 MiB: the kubelet
// opens a connection per probe and Prometheus keeps one, so a handful are in
// use; MaxConns bounds what a flood from the pod network costs.
var limits = listen.Limits{
	MaxConns:          16,
	MaxHeaderBytes:    8 << 10,
	ReadHeaderTimeout: 5 * time.Second,
	IdleTimeout:       15 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      10 * time.Second,
	ShutdownTimeout:   5 * time.Second,
}

// livenessGrace is how long the loop may spend between the end of a wait
// and the start of the next one (an exchange, its retries inside one
// attempt, and a write) before it counts as wedged.
const livenessGrace = time.Minute

// Monitor tracks the refresher's state for probes and metrics. It is a
// refresher.Observer: list it in the refresher's Observers.
type Monitor struct {
	refresher.NopObserver
	verified func() error
	now      func() time.Time
	metrics  *metrics

	current   atomic.Pointer[Status] // the token stored last, without Withdrawn; immutable
	withdrawn atomic.Pointer[string] // why the token is withdrawn; nil while one is held
	writeErr  atomic.Pointer[error]  // the last failed store's error; nil after a success
	start     time.Time              // origin of waitUntil, with its monotonic reading
	waitUntil atomic.Int64           // end of the refresher's wait, monotonic ns since start
}

// New returns a Monitor whose readiness follows verified, the token
// directory's last verdict (tokendir.Dir.Verified), which must not block.
// now is the clock; nil means time.Now.
func New(verified func() error, now func() time.Time) *Monitor {
	if now == nil {
		now = time.Now
	}
	return &Monitor{verified: verified, now: now, metrics: newMetrics(), start: time.Now()}
}

// Exchanged records an exchange attempt (refresher.Observer).
func (m *Monitor) Exchanged(d time.Duration, err error) {
	m.metrics.duration.Observe(d.Seconds())
	if err == nil {
		m.metrics.exchanges.WithLabelValues("success", "200").Inc()
		return
	}
	m.metrics.exchanges.WithLabelValues(failureKind(err), strconv.Itoa(exchange.StatusCode(err))).Inc()
}

// Stored records a stored token (refresher.Observer).
func (m *Monitor) Stored(tok exchange.Token, changed bool) {
	m.current.Store(&Status{LastSuccess: m.now().UTC(), Fingerprint: tok.Value.Fingerprint(), Expiry: tok.Expiry})
	m.writeErr.Store(nil)
	m.withdrawn.Store(nil)
	result := "unchanged"
	if changed {
		result = "written"
	}
	m.metrics.writes.WithLabelValues(result).Inc()
	m.metrics.failures.Set(0)
	m.metrics.lastSuccess.SetToCurrentTime()
	m.metrics.skew.Set(tok.Skew.Seconds())
	m.metrics.withdrawn.Set(0)
	m.metrics.expiry.Set(unixSeconds(tok.Expiry))
	m.metrics.credExpiry.Set(unixSeconds(tok.CredentialExpiry))
}

// Withdrawn records that the token is withdrawn for reason
// (refresher.Observer): readiness fails, naming it, until the next Stored.
func (m *Monitor) Withdrawn(reason string) {
	m.withdrawn.Store(&reason)
	m.metrics.withdrawn.Set(1)
}

// StoreFailed records a failed store (refresher.Observer).
func (m *Monitor) StoreFailed(err error) {
	m.writeErr.Store(&err)
	m.metrics.writes.WithLabelValues("failed").Inc()
}

// Restored records the token directory's attempt to write a lost file
// again (tokendir.Dir.Restored): a failure fails readiness and counts as
// a failed write, as a failed store does, until a write succeeds.
func (m *Monitor) Restored(err error) {
	if err != nil {
		m.StoreFailed(err)
		return
	}
	m.writeErr.Store(nil)
	m.metrics.writes.WithLabelValues("written").Inc()
}

// Failed mirrors the refresher's count of consecutive failures
// (refresher.Observer).
func (m *Monitor) Failed(_ error, consecutive int) {
	m.metrics.failures.Set(float64(consecutive))
}

// Waiting records when the refresher's wait ends (refresher.Observer).
func (m *Monitor) Waiting(until time.Time) {
	// until carries a monotonic reading; keep it monotonic.
	m.waitUntil.Store(int64(until.Sub(m.start)))
}

// Handler returns the HTTP handler for the probe and metrics paths.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", m.probe(m.live))
	mux.HandleFunc("GET /readyz", m.probe(m.ready))
	mux.HandleFunc("GET /startupz", m.probe(m.started))
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{Registry: m.metrics.reg}))
	mux.HandleFunc("GET "+StatusPath, m.serveStatus)
	return mux
}

func (m *Monitor) probe(check func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

func (m *Monitor) live() error {
	// Monotonic: a wall-clock step neither fakes nor hides a stuck loop.
	overdue := time.Since(m.start) - time.Duration(m.waitUntil.Load())
	if overdue > livenessGrace {
		return fmt.Errorf("refresh loop stuck for %s", overdue.Round(time.Second))
	}
	return nil
}

func (m *Monitor) started() error {
	if m.current.Load() == nil {
		return fmt.Errorf("no token written yet")
	}
	return nil
}

func (m *Monitor) ready() error {
	if why := m.withdrawn.Load(); why != nil {
		return fmt.Errorf("token withdrawn: %s", *why)
	}
	cur := m.current.Load()
	if cur == nil {
		return fmt.Errorf("no token written yet")
	}
	if err := m.writeErr.Load(); err != nil {
		return fmt.Errorf("writing the token file failed: %w", *err)
	}
	if !cur.Expiry.IsZero() && !m.now().Before(cur.Expiry) {
		return fmt.Errorf("token %s expired at %s", cur.Fingerprint, cur.Expiry.Format(time.RFC3339))
	}
	return m.verified()
}

// Serve answers on ln until ctx ends, then shuts down gracefully, within
// the bounds above; the HTTP server's own errors (failed accepts, bad
// connections) go to log as warnings. It returns nil after a shutdown
// caused by ctx.
func (m *Monitor) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	s := &listen.Server{Handler: m.Handler(), Limits: limits, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if err := s.Serve(ctx, ln); err != nil {
		return fmt.Errorf("health: serving on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Registerer returns the registry that /metrics serves, for components
// that export their own metrics (notifiers, the refresh socket). It is safe
// for concurrent use.
func (m *Monitor) Registerer() prometheus.Registerer { return m.metrics.reg }
