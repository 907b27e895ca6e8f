package proxy

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
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
	start        time.Time
	token        secret.String // the token sent first; a 401 on it may cause an exchange
	outcome      string
	upstreamCode int
	code         int         // the status answered, for the debug line
	at           time.Time   // when the answer's header was ready; zero until then
	cut          atomic.Bool // the token was withdrawn while the request was in flight
}

type stateKey struct{}

func stateOf(ctx context.Context) *state { return ctx.Value(stateKey{}).(*state) }

// ServeHTTP proxies one request; see the package doc for the steps.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &state{start: p.cfg.Now()}
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), stateKey{}, st))
	defer cancel()
	r = r.WithContext(ctx)
	defer p.finish(r, st)

	if a := refuseTarget(r); a != nil {
		p.reply(w, st, a)
		return
	}
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	default:
		p.reply(w, st, errOverloaded)
		return
	}
	tok, gone, err := p.token(ctx)
	if err != nil {
		p.upstreamError(w, r, err)
		return
	}
	st.token = tok
	// A withdrawal while the request is in flight cuts it: an answer not
	// yet begun becomes the 403, a stream (server-sent events) ends
	// cleanly at once (cutBody), an upgraded connection is closed.
	defer context.AfterFunc(gone, func() { st.cut.Store(true); cancel() })()
	// Let the upstream's response start while the request body is still
	// streaming in (HTTP/1.1 otherwise stops reading it at the first write).
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.rp.ServeHTTP(w, r)
	switch {
	case st.cut.Load():
		st.outcome = OutcomeWithdrawn
	case st.outcome == "":
		st.outcome = OutcomeForwarded
	}
}

// finish records the request's metrics and its debug line (no headers, no
// query: either can hold a secret).
func (p *Proxy) finish(r *http.Request, st *state) {
	if st.at.IsZero() {
		st.at = p.cfg.Now()
	}
	class := "none"
	if c := st.upstreamCode; c >= 100 && c < 600 {
		class = strconv.Itoa(c/100) + "xx"
	}
	p.metrics.requests.WithLabelValues(st.outcome, class).Inc()
	p.metrics.duration.Observe(st.at.Sub(st.start).Seconds())
	p.cfg.Logger.LogAttrs(r.Context(), slog.LevelDebug, "proxied request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", st.code), slog.String("outcome", st.outcome),
		slog.Duration("header_after", st.at.Sub(st.start)))
}

// modifyResponse is the ReverseProxy's ModifyResponse: it notes the
// upstream's answer and has its body end cleanly at a withdrawal (cutBody);
// an upgraded connection's body is left alone (the request's end closes it).
func (p *Proxy) modifyResponse(resp *http.Response) error {
	st := stateOf(resp.Request.Context())
	st.upstreamCode, st.code, st.at = resp.StatusCode, resp.StatusCode, p.cfg.Now()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &cutBody{ReadCloser: resp.Body, st: st}
	}
	return nil
}

// refuseTarget returns the answer to a request target that could name
// another destination, or nil.
func refuseTarget(r *http.Request) *answer {
	switch {
	case r.Method == http.MethodConnect:
		return &answer{http.StatusMethodNotAllowed, OutcomeRefused, "CONNECT is refused; this proxy forwards to its configured upstream only"}
	case r.URL.IsAbs() || r.URL.Host != "":
		return &answer{http.StatusBadRequest, OutcomeRefused, "absolute-form request targets are refused; send the path only (origin-form), it goes to the configured upstream"}
	case r.URL.Path == "" || r.URL.Path[0] != '/':
		return &answer{http.StatusBadRequest, OutcomeRefused, "the request target must be a path starting with /"}
	case hasDotSegment(r.URL.EscapedPath()):
		return &answer{http.StatusBadRequest, OutcomeRefused, `the request path has a "." or ".." segment (in some encoding), which could leave the upstream's base path: send the path resolved`}
	}
	return nil
}

// upstreamError is the ReverseProxy's ErrorHandler: it answers a request
// that got no token, or whose upstream failed. The error is logged without
// the URL query or headers; it never holds the token.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	if st.cut.Load() {
		reason, _ := p.src.Withdrawal()
		err = withdrawn(reason)
	}
	var a *answer
	switch {
	case errors.As(err, &a):
	case r.Context().Err() != nil:
		st.outcome = OutcomeCanceled
		return
	default:
		a = errUnreachable
		if t := (interface{ Timeout() bool })(nil); errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout() {
			a = errTimeout
		}
		p.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy: upstream request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	p.reply(w, st, a)
}

// reply writes the proxy's own answer: one line of text/plain (http.Error),
// not to be cached, with Retry-After when a 503.
func (p *Proxy) reply(w http.ResponseWriter, st *state, a *answer) {
	st.outcome, st.code, st.at = a.outcome, a.code, p.cfg.Now()
	w.Header().Set("Cache-Control", "no-store")
	if a.code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	}
	http.Error(w, a.Error(), a.code)
}

// maxDecodes bounds the layers of percent-encoding hasDotSegment peels; a
// path that still decodes to something new after them is refused.
const maxDecodes = 4

// hasDotSegment reports whether the escaped path p has a "." or ".."
// segment (RFC 3986, 3.3) as any server on the way might see it: decoded
// once or more (%2e, %252e, %5c), "\" taken as "/", and "..;" as "..".
// Joined under the upstream's base path, it could leave it, with the token.
func hasDotSegment(p string) bool {
	for range maxDecodes + 1 {
		for seg := range strings.SplitSeq(strings.ReplaceAll(p, `\`, "/"), "/") {
			if seg, _, _ = strings.Cut(seg, ";"); seg == "." || seg == ".." {
				return true
			}
		}
		d := unescape(p)
		if d == p {
			return false
		}
		p = d
	}
	return true
}

// unescape decodes every valid %XX in s and leaves the rest as it is, as a
// lenient server would.
func unescape(s string) string {
	return percentXX.ReplaceAllStringFunc(s, func(m string) string {
		b, _ := hex.DecodeString(m[1:])
		return string(b)
	})
}

var percentXX = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)
