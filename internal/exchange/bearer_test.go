package exchange_test

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// capabilityServer is the successor control plane as implemented
// (protocol.md section 3): GET /token with a bearer capability, answered
// with a fresh five-minute token and its expiry in Unix seconds.
type capabilityServer struct {
	mu    sync.Mutex
	valid string // the capability accepted
	reqs  []capabilityRequest
	n     int
}

type capabilityRequest struct {
	method, path, auth, contentType string
	body                            []byte
}

func (s *capabilityServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, capabilityRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
	s.n++
	n, valid := s.n, s.valid
	s.mu.Unlock()
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case r.Header.Get("Authorization") != "Bearer "+valid:
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"token":      "minted-" + strings.Repeat("x", n),
		"expires_at": time.Now().Add(5 * time.Minute).Unix(),
	})
}

func (s *capabilityServer) requests() []capabilityRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]capabilityRequest(nil), s.reqs...)
}

func (s *capabilityServer) accept(capability string) {
	s.mu.Lock()
	s.valid = capability
	s.mu.Unlock()
}

func newCapabilityServer(t *testing.T, capability string) (*capabilityServer, *httptest.Server) {
	cp := &capabilityServer{valid: capability}
	srv := httptest.NewTLSServer(cp)
	t.Cleanup(srv.Close)
	return cp, srv
}

func TestBearerWire(t *testing.T) {
	const capability = "cap.eyJydW4iOiJyMSJ9.sig"
	cp, srv := newCapabilityServer(t, capability)
	ex := &exchange.Bearer{
		Endpoint:   exchange.Endpoint{URL: srv.URL + "/token", Client: exchange.NewHTTPClient(trusting(srv))},
		Credential: secret.New(capability),
	}
	start := time.Now()
	tok, err := ex.Exchange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Value.Reveal() != "minted-x" || tok.ExpirySource != "expires_at" {
		t.Errorf("token %s from %q, want the minted token with its expires_at", tok.Value.Fingerprint(), tok.ExpirySource)
	}
	if life := tok.Expiry.Sub(start); life < 4*time.Minute || life > 6*time.Minute {
		t.Errorf("expiry %v after the request, want about five minutes", life)
	}
	reqs := cp.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodGet || r.path != "/token" || r.auth != "Bearer "+capability || len(r.body) != 0 || r.contentType != "" {
		t.Errorf("request %s %s auth-ok=%v body=%d bytes content-type=%q, want GET /token with the capability and no body",
			r.method, r.path, r.auth == "Bearer "+capability, len(r.body), r.contentType)
	}
}

// TestBearerRereadsTheCredentialFile: the file's owner replaces the
// credential; the next exchange carries the new one, with the file's
// trailing line feed dropped.
func TestBearerRereadsTheCredentialFile(t *testing.T) {
	cp, srv := newCapabilityServer(t, "first-capability")
	path := filepath.Join(t.TempDir(), "capability")
	ex := &exchange.Bearer{Endpoint: exchange.Endpoint{URL: srv.URL + "/token", Client: exchange.NewHTTPClient(trusting(srv))}, CredentialFile: path}
	for _, c := range []string{"first-capability", "second-capability"} {
		if err := os.WriteFile(path, []byte(c+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cp.accept(c)
		if _, err := ex.Exchange(t.Context()); err != nil {
			t.Fatalf("with %s: %v", c, err)
		}
	}
	reqs := cp.requests()
	if len(reqs) != 2 || reqs[0].auth != "Bearer first-capability" || reqs[1].auth != "Bearer second-capability" {
		t.Errorf("the credential file was not re-read before the second exchange")
	}
}

func TestBearerErrors(t *testing.T) {
	const capability = "the-capability-value"
	cp, srv := newCapabilityServer(t, capability)
	dir := t.TempDir()
	spaced := filepath.Join(dir, "spaced")
	os.WriteFile(spaced, []byte("the-capability value\n"), 0o600)
	tests := []struct {
		name       string
		ex         exchange.Bearer
		want       string
		status     int
		credential bool // wraps ErrCredential
		retryable  bool
		requests   int
	}{
		{name: "rejected", ex: exchange.Bearer{Credential: secret.New("revoked-capability")}, want: "credential rejected", status: 401, requests: 1},
		{name: "missing file", ex: exchange.Bearer{CredentialFile: filepath.Join(dir, "absent")}, want: "is the secret that holds it mounted", credential: true, retryable: true},
		{name: "bad bytes in file", ex: exchange.Bearer{CredentialFile: spaced}, want: "offset 14", credential: true, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(cp.requests())
			ex := tt.ex
			ex.URL, ex.Client = srv.URL+"/token", exchange.NewHTTPClient(trusting(srv))
			_, err := ex.Exchange(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if exchange.StatusCode(err) != tt.status || errors.Is(err, exchange.ErrCredential) != tt.credential || exchange.Retryable(err) != tt.retryable {
				t.Errorf("err = %v: status %d credential %v retryable %v, want %d %v %v", err,
					exchange.StatusCode(err), errors.Is(err, exchange.ErrCredential), exchange.Retryable(err), tt.status, tt.credential, tt.retryable)
			}
			if n := len(cp.requests()) - before; n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			noSecrets(t, err, capability, "revoked-capability", "capability value")
		})
	}
}

// trusting returns a pool that trusts srv's certificate alone.
func trusting(srv *httptest.Server) *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return roots
}

// noSecrets fails when err mentions one of the secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
}
