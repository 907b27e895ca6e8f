package main

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// tlsIssuer serves h's issuer over TLS (httptest's certificate, valid for
// 127.0.0.1, ::1 and example.com) with tweak applied to the server's TLS
// configuration, points h at it, and returns the path of a PEM file holding
// the certificate and a counter of HTTP requests that got through.
func tlsIssuer(t *testing.T, h *harness, tweak func(*tls.Config)) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.iss.ServeHTTP(w, r)
	}))
	if tweak != nil {
		srv.TLS = &tls.Config{}
		tweak(srv.TLS)
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	h.env["AMBIENT_CP_TOKEN_URL"] = srv.URL + "/token"
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemCert, 0o644); err != nil {
		t.Fatal(err)
	}
	return ca, &n
}

// TestInitTransportPolicy: https is verified against the system roots plus
// --ca-file / TOKEND_CA_FILE, with TLS 1.2 at least; a certificate that
// does not verify fails init at once (retrying cannot help); plain http is
// refused for hosts outside the node and the cluster; redirects are never
// followed.
func TestInitTransportPolicy(t *testing.T) {
	tls11 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11 }
	tls12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }
	tests := []struct {
		name     string
		tweak    func(*tls.Config)
		env      func(ca, url string) map[string]string
		args     func(ca string) []string
		code     int
		want     string
		requests int64
	}{
		{name: "TOKEND_CA_FILE", env: func(ca, _ string) map[string]string { return map[string]string{"TOKEND_CA_FILE": ca} }, requests: 1},
		{name: "--ca-file", args: func(ca string) []string { return []string{"--ca-file", ca} }, requests: 1},
		{name: "TLS 1.2 server", tweak: tls12, env: func(ca, _ string) map[string]string { return map[string]string{"TOKEND_CA_FILE": ca} }, requests: 1},
		{name: "unknown authority", code: 1, want: "certificate signed by unknown authority"},
		{name: "wrong host name", env: func(ca, url string) map[string]string {
			return map[string]string{"TOKEND_CA_FILE": ca, "AMBIENT_CP_TOKEN_URL": strings.Replace(url, "127.0.0.1", "localhost", 1)}
		}, code: 1, want: "not localhost"},
		{name: "TLS 1.1 server", tweak: tls11, env: func(ca, _ string) map[string]string {
			// Long enough that no handshake, however loaded the machine,
			// is cut short before the version is refused.
			return map[string]string{"TOKEND_CA_FILE": ca, "TOKEND_INIT_TIMEOUT": "5s"}
		}, code: 1, want: "protocol version"},
		{name: "plain http outside the cluster", env: func(string, string) map[string]string {
			return map[string]string{"AMBIENT_CP_TOKEN_URL": "http://cp.example.com/token"}
		}, code: 2, want: "plain http to cp.example.com is refused"},
		{name: "https redirect to http", env: func(ca, _ string) map[string]string { return map[string]string{"TOKEND_CA_FILE": ca} }, code: 1, want: "redirect refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ca, n := tlsIssuer(t, h, tt.tweak)
			var followed atomic.Bool // set by the plain server's handler
			if tt.name == "https redirect to http" {
				plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
				t.Cleanup(plain.Close)
				h.iss.Push(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, plain.URL+"/token", http.StatusFound)
				})
				tt.requests = 1
			}
			if tt.env != nil {
				for k, v := range tt.env(ca, h.env["AMBIENT_CP_TOKEN_URL"]) {
					h.env[k] = v
				}
			}
			args := []string{"init"}
			if tt.args != nil {
				args = append(args, tt.args(ca)...)
			}
			err := h.run(t.Context(), args...)
			if got := exitOf(err); got != tt.code {
				t.Fatalf("exit %d, want %d: %v\n%s", got, tt.code, err, h.stderr.String())
			}
			if tt.code == 0 {
				if h.token() != h.iss.Current() {
					t.Fatal("token file does not hold the issued token")
				}
			} else {
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %q lacks %q", err, tt.want)
				}
				if _, err := os.Stat(h.file); err == nil {
					t.Error("token file written")
				}
			}
			if strings.Contains(tt.want, "certificate") || strings.Contains(tt.want, "not localhost") {
				// Permanent: no retry until the 60 s init timeout.
				if strings.Contains(err.Error(), "no token before the deadline") || strings.Contains(h.stderr.String(), "will retry") {
					t.Errorf("a certificate that does not verify was retried: %v", err)
				}
			}
			if got := n.Load(); got != tt.requests {
				t.Errorf("%d requests reached the issuer, want %d", got, tt.requests)
			}
			if followed.Load() {
				t.Error("the redirect was followed")
			}
			h.assertNoSecrets(h.iss.Current())
		})
	}
}

// TestProcessTrustsSSLCertFile: the platform's SSL_CERT_FILE is part of the
// system roots, which a process reads once; so this runs the real binary.
func TestProcessTrustsSSLCertFile(t *testing.T) {
	h := newHarness(t)
	ca, n := tlsIssuer(t, h, nil)
	h.env["SSL_CERT_FILE"] = ca
	p := start(t, h, "init")
	if code := p.exit(t); code != 0 {
		t.Fatalf("init with SSL_CERT_FILE: exit %d\n%s", code, p.stderr.String())
	}
	if h.token() != h.iss.Current() || n.Load() != 1 {
		t.Fatal("token file does not hold the issued token")
	}
	delete(h.env, "SSL_CERT_FILE")
	h.env["TOKEND_INIT_TIMEOUT"] = "2s"
	os.Remove(h.file)
	p = start(t, h, "init")
	if code := p.exit(t); code != 1 || !strings.Contains(p.stderr.String(), "unknown authority") {
		t.Fatalf("init without SSL_CERT_FILE: exit %d, want 1 for an unknown authority\n%s", code, p.stderr.String())
	}
}
