package tokenfile

import (
	"fmt"
	"io"
	"net/http"
)

// Transport returns an http.RoundTripper that authorizes each request with
// the Watcher's current token, then sends it through base
// (http.DefaultTransport if base is nil).
//
// Each request is sent as follows:
//
//  1. The request is cloned and its Authorization header set to
//     "Bearer <token>", replacing any the caller set. The caller's request
//     is not modified.
//  2. If the Watcher holds no token yet, the file is read once; if there is
//     still none, RoundTrip fails with an error wrapping ErrNotReady and
//     nothing is sent. A request never goes out with an empty token.
//  3. If the response is 401 Unauthorized, the file is read again, at once,
//     in case the token rotated faster than the events arrived. If it holds
//     a different token and the request can be replayed safely (it has no
//     body, or GetBody is set, as http.NewRequest does for in-memory
//     bodies), the 401 response is discarded and the request is sent once
//     more with the new token. With WithRefreshSocket, a file that still
//     holds the rejected token makes the Transport ask tokend for a new
//     one first. Otherwise the 401 is returned as it is.
//
// The token is read on every request, so a client built on this transport
// follows rotations without a restart. An expired token is still sent; use
// Current().Expired to decide otherwise. The RoundTripper is safe for
// concurrent use.
func (w *Watcher) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{w: w, base: base}
}

type transport struct {
	w    *Watcher
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := t.w.Token()
	if tok == "" {
		if tok = t.w.reload().Token; tok == "" {
			closeBody(req)
			return nil, fmt.Errorf("tokenfile: %s %s not sent: %w (%v)",
				req.Method, req.URL.Redacted(), ErrNotReady, t.w.Current().Err)
		}
	}
	resp, err := t.base.RoundTrip(authorize(req, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable(req) {
		return resp, err
	}
	fresh := t.w.reload().Token
	if fresh == tok {
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

// authorize returns a clone of req carrying tok.
func authorize(req *http.Request, tok string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// replayable reports whether req can be sent a second time: it has no body,
// or a way to get the body again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// closeBody closes the body of a request that will not be sent, as the
// RoundTripper contract asks.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
