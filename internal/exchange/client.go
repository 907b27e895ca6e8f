package exchange

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// MaxResponseHeaderBytes bounds the status line and headers of an answer,
// as the body is bounded, against megabytes of headers.
const MaxResponseHeaderBytes = 64 << 10

// NewHTTPClient returns the HTTP client every Exchanger should use: TLS 1.2
// or later verified against roots (the system pool when nil), redirects
// not followed (a 3xx becomes a *StatusError), headers bounded by
// MaxResponseHeaderBytes, idle connections closed under the server's 60 s,
// and the proxy from the environment (HTTPS_PROXY, NO_PROXY) for https
// URLs only. The client is safe for concurrent use.
func NewHTTPClient(roots *x509.CertPool) *http.Client {
	return newHTTPClient(roots, http.ProxyFromEnvironment)
}

// newHTTPClient is NewHTTPClient with the proxy setting read by proxy
// (tests inject it: http.ProxyFromEnvironment reads the environment once).
func newHTTPClient(roots *x509.CertPool, proxy func(*http.Request) (*url.URL, error)) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A forward proxy would see a plain-http request in clear: the
	// credential, and an answer it may forge. An https request crosses it
	// in a CONNECT tunnel, and TLS still verifies the issuer end to end.
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		if req.URL.Scheme != "https" {
			return nil, nil
		}
		return proxy(req)
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	tr.IdleConnTimeout = 30 * time.Second
	tr.MaxIdleConns = 2
	tr.ResponseHeaderTimeout = 10 * time.Second
	tr.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	return &http.Client{Transport: tr, CheckRedirect: noRedirect}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// LoadRoots returns the certificates in the PEM file at path (none when
// path is empty), added to the system roots (SSL_CERT_FILE and SSL_CERT_DIR
// honoured) when system is set. The system roots are most of a cold
// start's CPU: ask for them only for an https URL. Errors name the file
// and say what is wrong with it.
func LoadRoots(path string, system bool) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if system {
		if sys, err := x509.SystemCertPool(); err == nil {
			pool = sys
		}
	}
	if path == "" {
		return pool, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
