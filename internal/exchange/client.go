package exchange

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"
)

// MaxResponseHeaderBytes bounds the status line and headers of an answer
// from the token endpoint, as the body is bounded: an issuer, or a proxy
// in front of it, could otherwise make tokend hold megabytes of headers.
const MaxResponseHeaderBytes = 64 << 10

// NewHTTPClient returns the HTTP client every Exchanger should use: TLS 1.2
// or later verified against roots (the system pool when nil), redirects
// returned to the caller instead of followed (a 3xx becomes a *StatusError),
// response headers bounded by MaxResponseHeaderBytes, and idle connections kept briefly under the server's 60 s idle timeout.
func NewHTTPClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
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
