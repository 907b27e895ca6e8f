package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ambient-code/tokend/internal/secret"
)

// fakeSource is a Source whose token the test sets. Refresh runs onRefresh
// (when set) and counts the calls.
type fakeSource struct {
	mu        sync.Mutex // guards the fields below
	tok       secret.String
	exp       time.Time
	held      bool
	refreshes int
	onRefresh func(s *fakeSource) // called with mu held
	failing   error               // when set, Refresh fails with it (an issuer outage)

	reason string             // why the token is withdrawn; "" when it is not
	gone   context.Context    // ends when the token is withdrawn
	cancel context.CancelFunc // ends gone

	ready     chan struct{}
	readyOnce sync.Once
	waiting   chan struct{} // when set, Ready sends on it (without blocking)
}

func newSource() *fakeSource {
	s := &fakeSource{ready: make(chan struct{})}
	s.gone, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *fakeSource) set(tok string, exp time.Time) {
	s.mu.Lock()
	s.tok, s.exp, s.held = secret.New(tok), exp, true
	if s.reason != "" {
		s.reason = ""
		s.gone, s.cancel = context.WithCancel(context.Background())
	}
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
}

// withdraw withdraws the token for reason, as the daemon does after a
// definitive refusal.
func (s *fakeSource) withdraw(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok, s.held, s.reason = secret.String{}, false, reason
	s.cancel()
}

func (s *fakeSource) Withdrawal() (string, context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason, s.gone
}

func (s *fakeSource) Token() (secret.String, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, s.exp, s.held
}

func (s *fakeSource) Refresh(ctx context.Context) error {
	s.mu.Lock()
	s.refreshes++
	if f := s.onRefresh; f != nil {
		f(s)
	}
	failing := s.failing
	s.mu.Unlock()
	if failing != nil {
		return failing
	}
	return ctx.Err()
}

func (s *fakeSource) Ready() <-chan struct{} {
	select {
	case s.waiting <- struct{}{}:
	default:
	}
	return s.ready
}

func (s *fakeSource) refreshCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rig is a running proxy in front of an upstream.
type rig struct {
	proxy *Proxy
	src   *fakeSource
	reg   *prometheus.Registry
	logs  *syncBuffer
	url   string // the proxy's base URL
	addr  string // the proxy's host:port
	stop  func() // stops the proxy and waits for Serve; idempotent
}

// start runs a proxy for upstream on 127.0.0.1:0 (or ln when given) until
// the test ends. At the end it checks that Serve returned nil and that no
// log line holds a token the source handed out (tokens are "tok-…").
func start(t *testing.T, upstream string, src *fakeSource, mod func(*Config), ln net.Listener) *rig {
	t.Helper()
	u, err := ParseUpstream(upstream)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	cfg := Config{
		Upstream:   u,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = ListenMode("127.0.0.1:0", 0o660); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	})
	t.Cleanup(func() {
		stop()
		if strings.Contains(logs.String(), "tok-") {
			t.Errorf("a log line holds a token:\n%s", logs.String())
		}
	})
	return &rig{proxy: p, src: src, reg: reg, logs: logs, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

// counter returns the value of the proxy counter name with the labels. It
// stops the proxy first: the graceful shutdown waits for every handler, so
// every request's metrics are recorded.
func (r *rig) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	r.stop()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// recorder is an upstream that records each request it gets.
type recorder struct {
	mu   sync.Mutex // guards reqs
	reqs []recorded
}

type recorded struct {
	method, uri, host string
	header            http.Header
	body              string
}

func (rec *recorder) add(r *http.Request, body string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, recorded{r.Method, r.RequestURI, r.Host, r.Header.Clone(), body})
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// echoUpstream answers 200 "ok" and records every request.
func echoUpstream(t *testing.T) (*httptest.Server, *recorder) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.add(r, string(b))
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newUpstream starts an upstream with handler h and returns its URL.
func newUpstream(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// result is the outcome of a request sent by async.
type result struct {
	code int
	body string
	err  error
}

// async sends req from another goroutine and delivers its status and whole
// body on the returned channel.
func async(req *http.Request) <-chan result {
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	return res
}
