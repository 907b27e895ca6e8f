package tokenfile

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ErrOrigin is the error of a request the Transport refuses because it is
// addressed to an origin the token is not for. Nothing is sent.
var ErrOrigin = errors.New("tokenfile: request addressed to an origin the token is not for")

// A TransportOption configures the RoundTripper that Transport returns.
type TransportOption func(*transport)

// AllowOrigins lists the origins the Transport sends the token to, in place
// of the default (the origin of the first request it carries). An origin is
// scheme://host[:port] as RFC 6454 defines it: the scheme is http or https,
// there is no path, query, fragment or user, and a missing port is the
// scheme's default, so "https://api.example" and "https://api.example:443"
// are the same origin. Host names are compared as written, after lowering
// their case: "localhost" and "127.0.0.1" are different origins.
//
// A malformed origin fails every request with an error that names it; no
// request is sent.
func AllowOrigins(origins ...string) TransportOption {
	return func(t *transport) {
		for _, s := range origins {
			u, err := url.Parse(s)
			if err != nil || u.Host == "" || u.Hostname() == "" || u.User != nil ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				t.err = errors.Join(t.err, fmt.Errorf("tokenfile: AllowOrigins: %q is not an origin; write it as scheme://host[:port], e.g. https://api.example:8443", s))
			} else if c, ok := origin(u); !ok {
				t.err = errors.Join(t.err, fmt.Errorf("tokenfile: AllowOrigins: %q has scheme %q; write it as scheme://host[:port] with scheme http or https", s, u.Scheme))
			} else {
				t.allow = append(t.allow, c)
			}
		}
	}
}

// defaultPorts are the schemes an origin may have, and their ports.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// origin returns the canonical origin of u: lower-case scheme and host, and
// the port always present. ok is false unless the scheme is http or https.
func origin(u *url.URL) (o string, ok bool) {
	scheme := strings.ToLower(u.Scheme)
	port, ok := defaultPorts[scheme]
	if !ok {
		return "", false
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), cmp.Or(u.Port(), port)), true
}

// destination decides whether req may carry the token. It returns nil if
// so, ErrOrigin (wrapped) if the consumer itself addressed req elsewhere,
// and errSkip if req is a redirect the client follows to somewhere the
// token must not go: that hop is sent without it.
func (t *transport) destination(req *http.Request) error {
	o, ok := origin(req.URL)
	redirect := req.Response != nil
	// Plain http to a host the token already went to over https.
	plain := strings.EqualFold(req.URL.Scheme, "http")
	_, wentTLS := t.tls.Load(strings.ToLower(req.URL.Hostname()))
	switch {
	case redirect && plain && (wentTLS || downgraded(req)):
		return errSkip
	case plain && wentTLS:
		return fmt.Errorf("%w: %s %s not sent: the token went to %s over https and never goes there in clear; use https",
			ErrOrigin, req.Method, req.URL.Redacted(), req.URL.Hostname())
	case ok && t.allowed(o, !redirect):
		if strings.EqualFold(req.URL.Scheme, "https") {
			t.tls.Store(strings.ToLower(req.URL.Hostname()), true)
		}
		return nil
	case redirect:
		return errSkip
	}
	only := strings.Join(t.allow, ", ")
	if p := t.pinned.Load(); p != nil {
		only = *p + " (the origin of the first request)"
	} else if only == "" {
		only = "the origin of the first request"
	}
	return fmt.Errorf("%w: %s %s not sent: the token is only for %s; list every origin it is for with tokenfile.AllowOrigins",
		ErrOrigin, req.Method, req.URL.Redacted(), only)
}

// errSkip marks a redirect hop that goes out without the token.
var errSkip = errors.New("tokenfile: redirect leaves the token's origins")

// allowed reports whether the token may go to origin o. Without an explicit
// list, the first request that may pin the origin does.
func (t *transport) allowed(o string, mayPin bool) bool {
	if len(t.allow) > 0 {
		return slices.Contains(t.allow, o)
	}
	if mayPin && t.pinned.CompareAndSwap(nil, &o) {
		return true
	}
	return *t.pinned.Load() == o
}

// downgraded reports whether a redirect chain that reached req went over
// https before: the token never goes in clear where it went encrypted.
func downgraded(req *http.Request) bool {
	for r := req.Response; r != nil && r.Request != nil; r = r.Request.Response {
		if strings.EqualFold(r.Request.URL.Scheme, "https") {
			return true
		}
	}
	return false
}
