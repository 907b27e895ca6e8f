package proxy

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// state is one request's record, shared by the handler, the rewrite and
// the transport through the request's context. Only the request's own
// goroutines touch it, one after another.
type state struct {
	token        secret.String // the token to send; the transport replaces it on a retry
	outcome      string
	upstreamCode int
	cut          atomic.Bool // the token was withdrawn while the request was in flight
}

type stateKey struct{}

func stateOf(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	if st == nil {
		return &state{} // a request that did not come through ServeHTTP
	}
	return st
}

// ServeHTTP proxies one request; see the package doc for the steps.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.cfg.Now()
	sw := &statusWriter{ResponseWriter: w, now: p.cfg.Now}
	st := &state{}
	defer func() { p.finish(r, sw, st, start) }()

	if code, reason := refuseTarget(r); code != 0 {
		st.outcome = OutcomeRefused
		plain(sw, code, reason, 0)
		return
	}
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	default:
		st.outcome = OutcomeOverloaded
		plain(sw, http.StatusServiceUnavailable, "tokend proxy: too many requests in flight; retry shortly", retryAfter)
		return
	}
	tok, gone, err := p.token(r.Context())
	if err != nil {
		code, retry, outcome := answerOf(err)
		st.outcome = outcome
		if r.Context().Err() == nil {
			plain(sw, code, err.Error(), retry)
		}
		return
	}
	st.token = tok
	// A withdrawal while the request is in flight cuts it: an answer not
	// yet begun becomes the 403, a stream (server-sent events) ends
	// cleanly at once (cutBody), an upgraded connection is closed.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(gone, func() { st.cut.Store(true); cancel() })()
	// Let the upstream's response start while the request body is still
	// streaming in (HTTP/1.1 otherwise stops reading it at the first write).
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.rp.ServeHTTP(sw, r.WithContext(context.WithValue(ctx, stateKey{}, st)))
	switch {
	case st.cut.Load():
		st.outcome = OutcomeWithdrawn
	case st.outcome == "":
		st.outcome = OutcomeForwarded
	}
}

// finish records the request's metrics and its debug line (no headers, no
// query: either can hold a secret).
func (p *Proxy) finish(r *http.Request, sw *statusWriter, st *state, start time.Time) {
	at := sw.at
	if at.IsZero() {
		at = p.cfg.Now()
	}
	p.metrics.observe(st.outcome, st.upstreamCode, at.Sub(start))
	if !p.cfg.Logger.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	p.cfg.Logger.LogAttrs(r.Context(), slog.LevelDebug, "proxied request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", sw.code), slog.String("outcome", st.outcome),
		slog.Duration("header_after", at.Sub(start)))
}

// refuseTarget returns the status and reason for a request target that
// could name another destination, or 0.
func refuseTarget(r *http.Request) (int, string) {
	switch {
	case r.Method == http.MethodConnect:
		return http.StatusMethodNotAllowed, "tokend proxy: CONNECT is refused; this proxy forwards to its configured upstream only"
	case r.URL.IsAbs() || r.URL.Host != "":
		return http.StatusBadRequest, "tokend proxy: absolute-form request targets are refused; send the path only (origin-form), it goes to the configured upstream"
	case r.URL.Path == "" || r.URL.Path[0] != '/':
		return http.StatusBadRequest, "tokend proxy: the request target must be a path starting with /"
	case hasDotSegment(r.URL.EscapedPath()):
		return http.StatusBadRequest, `tokend proxy: the request path has a "." or ".." segment (in some encoding), which could leave the upstream's base path: send the path resolved`
	}
	return 0, ""
}

// upstreamError is the ReverseProxy's ErrorHandler: the upstream could not
// be reached or did not answer. The error is logged without the request's
// URL query or headers; it never holds the token.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	if st.cut.Load() {
		reason, _ := p.src.Withdrawal()
		err = withdrawn(reason)
	}
	if code, retry, outcome := answerOf(err); code != 0 {
		st.outcome = outcome
		plain(w, code, err.Error(), retry)
		return
	}
	if r.Context().Err() != nil {
		st.outcome = OutcomeCanceled
		return
	}
	st.outcome = OutcomeUpstreamError
	code, reason := http.StatusBadGateway, "tokend proxy: the upstream could not be reached"
	if t := (interface{ Timeout() bool })(nil); errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout() {
		code, reason = http.StatusGatewayTimeout, "tokend proxy: the upstream did not answer in time"
	}
	p.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy: upstream request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	plain(w, code, reason, 0)
}

// plain writes a short text/plain answer, with Retry-After when retry > 0.
func plain(w http.ResponseWriter, code int, reason string, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(reason + "\n"))
}

// statusWriter records the status and the time the header was written. It
// unwraps for http.ResponseController (flushes, full duplex, upgrades).
type statusWriter struct {
	http.ResponseWriter
	now  func() time.Time
	code int
	at   time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.at.IsZero() && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code, w.at = code, w.now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.at.IsZero() {
		w.code, w.at = http.StatusOK, w.now()
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxDecodes bounds how many layers of percent-encoding hasDotSegment
// peels: a path that still decodes to something new after this many is
// refused outright.
const maxDecodes = 4

// hasDotSegment reports whether the escaped request path p has a "." or
// ".." segment (RFC 3986, section 3.3) as any server on the way might see
// it: decoded once or more (%2e, %252e, any case), with an encoded slash
// (%2f) or a backslash (\, %5c) as a separator, and with a ";" parameter
// after the dots ("..;", which some servers resolve). Such a path, joined
// under the upstream's base path, could resolve to a path outside it, with
// the token attached.
func hasDotSegment(p string) bool {
	for range maxDecodes + 1 {
		if dotSegment(p) {
			return true
		}
		d := unescape(p)
		if d == p {
			return false
		}
		p = d
	}
	return true
}

// dotSegment checks one decoding of the path.
func dotSegment(p string) bool {
	p = strings.ReplaceAll(p, `\`, "/")
	for seg := range strings.SplitSeq(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// unescape decodes every valid %XX in s and leaves the rest as it is, as a
// lenient server would.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
