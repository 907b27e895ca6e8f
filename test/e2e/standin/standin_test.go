package standin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// exchanger is tokend's own client of the deployed exchange, pointed at cp.
func exchanger(cp *ControlPlane, key *rsa.PrivateKey) *exchange.EncryptedSession {
	return &exchange.EncryptedSession{
		Endpoint:  exchange.Endpoint{URL: "http://" + cp.Addr() + "/token", Client: exchange.NewHTTPClient(x509.NewCertPool())},
		PublicKey: &key.PublicKey,
		SessionID: secret.New("e2e-session-0001"),
	}
}

// TestControlPlaneStates: the control plane serves tokend's exchange while
// Up, refuses connections while Down, serves again on the same address
// with the same key when Up again, and answers 403 while Refusing.
func TestControlPlaneStates(t *testing.T) {
	key := newKey(t)
	cp := NewControlPlane("127.0.0.1:0", key, time.Minute, 10*time.Second, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = cp.Close() })
	if err := cp.Set(Up); err != nil {
		t.Fatal(err)
	}
	ex := exchanger(cp, key)
	tok, err := ex.Exchange(t.Context())
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if got, want := cp.Served(), []string{tok.Value.Fingerprint()}; !slices.Equal(got, want) {
		t.Errorf("Served() = %v, want %v", got, want)
	}
	addr := cp.Addr()

	if err := cp.Set(Down); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Exchange(t.Context()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: %v, want connection refused", err)
	}

	cp.Rotate()
	if err := cp.Set(Up); err != nil {
		t.Fatal(err)
	}
	if cp.Addr() != addr {
		t.Errorf("up again on %s, want the same address %s", cp.Addr(), addr)
	}
	again, err := ex.Exchange(t.Context())
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	if again.Value.Fingerprint() == tok.Value.Fingerprint() {
		t.Error("after Rotate the control plane handed out the same token")
	}
	if n := len(cp.Served()); n != 2 {
		t.Errorf("Served() has %d tokens, want 2", n)
	}

	if err := cp.Set(Refusing); err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Exchange(t.Context()); exchange.StatusCode(err) != http.StatusForbidden {
		t.Errorf("refusing: %v, want 403", err)
	}
}

// TestUpstreamChecksTheToken: the upstream answers 200 only to a token the
// control plane signed that has not expired, over TLS that a client
// trusting the stand-in CA accepts, and records each request's token by
// fingerprint.
func TestUpstreamChecksTheToken(t *testing.T) {
	key := newKey(t)
	cp := NewControlPlane("127.0.0.1:0", key, time.Minute, 10*time.Second, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = cp.Close() })
	if err := cp.Set(Up); err != nil {
		t.Fatal(err)
	}
	tok, err := exchanger(cp, key).Exchange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The same claims, signed by another key.
	other := NewControlPlane("127.0.0.1:0", newKey(t), time.Minute, 10*time.Second, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = other.Close() })
	if err := other.Set(Up); err != nil {
		t.Fatal(err)
	}
	forged, err := exchanger(other, other.Issuer.Key).Exchange(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	caPEM, certPEM, keyPEM, err := NewTLS("ambient-api-server.ambient-code.svc", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerTLS(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	up := &Upstream{Key: &key.PublicKey, Log: slog.New(slog.DiscardHandler)}
	srv := httptest.NewUnstartedServer(up)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := exchange.NewHTTPClient(roots)

	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"the control plane's token", tok.Value.Reveal(), http.StatusOK},
		{"a token signed by another key", forged.Value.Reveal(), http.StatusUnauthorized},
		{"no token", "", http.StatusUnauthorized},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/health", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	got := up.Requests()
	want := []Request{
		{"/health", http.StatusOK, tok.Value.Fingerprint()},
		{"/health", http.StatusUnauthorized, forged.Value.Fingerprint()},
		{"/health", http.StatusUnauthorized, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Requests() = %v, want %v", got, want)
	}
}

// TestVerifyRefusesAnExpiredToken: a token past its exp claim is refused
// even with a good signature.
func TestVerifyRefusesAnExpiredToken(t *testing.T) {
	key := newKey(t)
	cp := NewControlPlane("127.0.0.1:0", key, time.Minute, 10*time.Second, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = cp.Close() })
	if err := cp.Set(Up); err != nil {
		t.Fatal(err)
	}
	tok, err := exchanger(cp, key).Exchange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(&key.PublicKey, tok.Value.Reveal(), tok.Expiry.Add(-time.Second)); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	if err := verify(&key.PublicKey, tok.Value.Reveal(), tok.Expiry.Add(time.Second)); err == nil {
		t.Error("after expiry: accepted")
	}
}
