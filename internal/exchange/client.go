package exchange

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"time"
)

// MaxResponseHeaderBytes bounds the status line and headers of an answer
// from the token endpoint, as the body is bounded: an issuer, or a proxy
// in front of it, could otherwise make tokend hold megabytes of headers.
const MaxResponseHeaderBytes = 64 << 10

// NewHTTPClient returns the HTTP client every Exchanger should use: TLS 1.2
// or later verified against roots (the system pool when nil), redirects
// returned to the caller instead of followed (a 3xx becomes a *StatusError),
// response headers bounded by MaxResponseHeaderBytes, idle connections kept
// briefly under the server's 60 s idle timeout, and the proxy from the
// environment (HTTPS_PROXY, NO_PROXY) for https URLs only: a plain-http
// exchange always goes straight to the issuer. The client is safe for
// concurrent use.
func NewHTTPClient(roots *x509.CertPool) *http.Client {
	return newHTTPClient(roots, http.ProxyFromEnvironment)
}

// newHTTPClient is NewHTTPClient with the proxy setting read by proxy
// (tests inject it; http.ProxyFromEnvironment reads the process
// environment only once).
func newHTTPClient(roots *x509.CertPool, proxy func(*http.Request) (*url.URL, error)) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = httpsOnly(proxy)
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	tr.IdleConnTimeout = 30 * time.Second
	tr.MaxIdleConns = 2
	tr.ResponseHeaderTimeout = 10 * time.Second
	tr.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// httpsOnly applies proxy to https requests only. A forward proxy sees a
// plain-http request in clear: the credential, and an answer it may forge.
// Through an https proxy setting the request travels in a CONNECT tunnel,
// and TLS still verifies the issuer end to end.
func httpsOnly(proxy func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		if req.URL.Scheme != "https" {
			return nil, nil
		}
		return proxy(req)
	}
}
