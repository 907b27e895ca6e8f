package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// newTransport returns the upstream transport: TLS verified against
// cfg.RootCAs, bounded idle connections and header wait, no HTTP_PROXY.
func newTransport(cfg Config) *http.Transport {
	return &http.Transport{
		DialContext:            (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    dialTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConns,
		IdleConnTimeout:        idleConnTimeout,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		ExpectContinueTimeout:  retryAfter,
		MaxResponseHeaderBytes: int64(cfg.MaxHeaderBytes),
	}
}

// retryTransport sends a request once more, with a fresh token, after a
// 401 (see the package doc, step 6, and reauth for when), and never lets a
// 401 through: it answers in the upstream's place.
type retryTransport struct{ p *Proxy }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req, replayable, err := t.replayable(req)
	if err != nil {
		return nil, err
	}
	resp, err := t.p.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	st := stateOf(req.Context())
	st.upstreamCode = resp.StatusCode
	discard(resp)
	fresh, ok, rerr := t.p.fresh(req.Context(), st.token)
	if reason, _ := t.p.src.Withdrawal(); reason != "" {
		return nil, withdrawn(reason)
	}
	switch {
	case !ok && rerr != nil:
		return nil, &answer{http.StatusServiceUnavailable, OutcomeUpstreamRefused, "the upstream refused the token (401) and no fresh one came; retry shortly"}
	case !ok:
		return nil, &answer{http.StatusBadGateway, OutcomeUpstreamRefused, "the upstream refused the token (401), and there is no other to send"}
	case !replayable:
		return nil, &answer{http.StatusServiceUnavailable, OutcomeUpstreamRefused, "the upstream refused the token (401); a fresh one is in place, but this request's body cannot be sent again: send the request again"}
	}
	retry := req.Clone(req.Context())
	retry.Header.Set("Authorization", "Bearer "+fresh.Reveal())
	if req.GetBody != nil {
		retry.Body, _ = req.GetBody() // replayable's, which cannot fail
	}
	t.p.metrics.retries.Inc()
	t.p.cfg.Logger.LogAttrs(req.Context(), slog.LevelDebug, "proxy: upstream answered 401; retrying with a fresh token",
		slog.String("path", req.URL.Path), slog.String("token", fresh.Fingerprint()))
	resp, err = t.p.base.RoundTrip(retry)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		discard(resp)
		return nil, &answer{http.StatusBadGateway, OutcomeUpstreamRefused, "the upstream refused a freshly issued token too (401): it does not accept this session's tokens"}
	}
	return resp, err
}

// discard reads a little of resp's body (a 401's), so that the connection
// can be reused for the retry, and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// cutBody is an upstream response body that ends (io.EOF) instead of
// failing when the token was withdrawn mid-way, so that the client sees a
// complete response (a stream that ends) rather than a broken connection.
type cutBody struct {
	io.ReadCloser
	st *state
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.st.cut.Load() {
		return n, io.EOF
	}
	return n, err
}

// replayable reads req's body into memory, with a GetBody for the retry,
// when it has a declared length up to MaxReplayBytes, and reports whether
// req can be sent again (also with no body); any other body streams.
func (t retryTransport) replayable(req *http.Request) (*http.Request, bool, error) {
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return req, true, nil
	case req.ContentLength <= 0 || req.ContentLength > t.p.cfg.MaxReplayBytes:
		return req, false, nil
	}
	buf := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, buf); err != nil {
		return nil, false, fmt.Errorf("proxy: reading the request body: %w", err)
	}
	_ = req.Body.Close()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(buf))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return out, true, nil
}

const copyBufferSize = 32 << 10

// bufferPool lends httputil.ReverseProxy its copy buffers, so that a
// request does not allocate 32 KiB each time. Safe for concurrent use.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) { b.p.Put((*[copyBufferSize]byte)(buf)) } // only what Get lent
