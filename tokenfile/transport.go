package tokenfile

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// Transport returns an http.RoundTripper that authorizes each request with
// the Watcher's current token, then sends it through base
// (http.DefaultTransport if base is nil).
//
// The token goes only where the consumer meant it to go: to the origin
// (scheme, host and port) of the first request the RoundTripper carries,
// or to the origins listed with AllowOrigins. Each request is sent as
// follows:
//
//  1. If the request is addressed to another origin, RoundTrip fails with
//     an error wrapping ErrOrigin and nothing is sent. A redirect that
//     http.Client follows to another origin, or from https to plain http
//     (even to a listed origin), is sent without the token, as Go's client
//     does for credentials of its own; so is any retry of it. Plain http
//     to a host the token went to over https is refused likewise (or, for
//     a redirect, sent without the token), whatever the list says.
//  2. Otherwise the request is cloned and its Authorization header set to
//     "Bearer <token>", replacing any the caller set. The caller's request
//     is not modified.
//  3. If the Watcher holds no token yet, the file is read (settled as in
//     step 4); if it holds none, RoundTrip fails with an error wrapping
//     ErrNotReady and nothing is sent.
//  4. After a 401 Unauthorized the file is read again at once (or, if it
//     just changed, once left alone), in case the token rotated faster
//     than the events arrived. If it holds a different token and the request
//     can be replayed (it has no body, or GetBody is set, as
//     http.NewRequest does for in-memory bodies), the 401 is discarded and
//     the request is sent once more with the new token. With
//     WithRefreshSocket, a file that still holds the rejected token makes
//     the Transport ask tokend for a new one first. Otherwise the 401 is
//     returned as it is.
//
// The token is read on every request, so a client built on this transport
// follows rotations without a restart. An expired token is still sent; use
// Current().Expired to decide otherwise. The RoundTripper is safe for
// concurrent use.
func (w *Watcher) Transport(base http.RoundTripper, opts ...TransportOption) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &transport{w: w, base: base}
	for _, o := range opts {
		o(t)
	}
	return t
}

type transport struct {
	w      *Watcher
	base   http.RoundTripper
	allow  []string               // canonical origins from AllowOrigins; empty: pinned
	err    error                  // a malformed option, returned by every RoundTrip
	pinned atomic.Pointer[string] // the origin of the first request, without allow
	tls    sync.Map               // lower-case host names the token went to over https
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.err != nil {
		return refuse(req, t.err)
	}
	switch err := t.destination(req); {
	case errors.Is(err, errSkip):
		return t.base.RoundTrip(authorize(req, ""))
	case err != nil:
		return refuse(req, err)
	}
	tok := t.w.Token()
	if tok == "" {
		if tok = t.w.reloadSettled(req.Context()).Token; tok == "" {
			return refuse(req, &noTokenError{what: req.Method + " " + req.URL.Redacted() + " not sent without a token",
				path: t.w.path, state: t.w.Current().Err, also: []error{ErrNotReady}})
		}
	}
	resp, err := t.base.RoundTrip(authorize(req, tok))
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable {
		return resp, err
	}
	fresh := t.w.reloadSettled(req.Context()).Token
	if fresh == tok && t.w.refreshSocket != "" {
		fresh = t.w.askRefresh(req.Context(), tok) // WithRefreshSocket: refresh.go
	}
	if fresh == tok || fresh == "" {
		return resp, nil
	}
	retry := authorize(req, fresh)
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil // keep the 401: the request cannot be replayed
		}
		retry.Body = body
	}
	// Let the connection be reused: read a little of the 401's body, then
	// drop it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	return t.base.RoundTrip(retry)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it can, so that http.Client.CloseIdleConnections works through it.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// authorize returns a clone of req carrying tok, or no Authorization
// header at all when tok is "".
func authorize(req *http.Request, tok string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Del("Authorization")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// refuse closes the body of a request that will not be sent, as the
// RoundTripper contract asks, and returns err.
func refuse(req *http.Request, err error) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, err
}
