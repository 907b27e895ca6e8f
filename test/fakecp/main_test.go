package main

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

// start runs fakecp with args until the test ends and returns its address.
func start(t *testing.T, args ...string) net.Addr {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(args, "--addr", "127.0.0.1:0"), io.Discard, func(a net.Addr) { addrs <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(testkit.Patience):
		t.Fatal("fakecp did not listen")
	}
	return nil
}

func TestBearerModeRefusesOtherCAs(t *testing.T) {
	dir := t.TempDir()
	addr := start(t, "--auth", "bearer", "--ca-out", filepath.Join(dir, "ca.pem"), "--credential-out", filepath.Join(dir, "capability"))
	ex := &exchange.Bearer{Endpoint: exchange.Endpoint{URL: "https://" + addr.String() + "/token", Client: exchange.NewHTTPClient(x509.NewCertPool())}, CredentialFile: filepath.Join(dir, "capability")}
	if _, err := ex.Exchange(t.Context()); err == nil {
		t.Fatal("exchange succeeded without trusting fakecp's CA")
	}
}

// TestBearerMode: fakecp serves the successor's GET /token over TLS with
// the capability it wrote, and tokend's bearer exchanger takes a
// five-minute token from it; a wrong capability is refused.
func TestBearerMode(t *testing.T) {
	dir := t.TempDir()
	ca, capability := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "capability")
	addr := start(t, "--auth", "bearer", "--ca-out", ca, "--credential-out", capability)
	roots, err := exchange.LoadRoots(ca, true)
	if err != nil {
		t.Fatal(err)
	}
	ex := &exchange.Bearer{Endpoint: exchange.Endpoint{URL: "https://" + addr.String() + "/token", Client: exchange.NewHTTPClient(roots)}, CredentialFile: capability}
	tok, err := ex.Exchange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(tok.Expiry); tok.ExpirySource != "expires_at" || d < 4*time.Minute || d > 5*time.Minute {
		t.Errorf("token lives %v from %q, want the default five minutes from expires_at", d, tok.ExpirySource)
	}
	ex.CredentialFile, ex.Credential = "", secret.New("cap.forged")
	if _, err := ex.Exchange(t.Context()); exchange.StatusCode(err) != 401 {
		t.Errorf("a forged capability: %v, want 401", err)
	}
}

func TestEncryptedSessionModeIsTheDefault(t *testing.T) {
	keyOut := filepath.Join(t.TempDir(), "cp.pub")
	addr := start(t, "--public-key-out", keyOut, "--lifetime", "1m")
	pem, err := os.ReadFile(keyOut)
	if err != nil {
		t.Fatal(err)
	}
	key, err := exchange.ParsePublicKey(string(pem))
	if err != nil {
		t.Fatal(err)
	}
	ex := &exchange.EncryptedSession{Endpoint: exchange.Endpoint{URL: "http://" + addr.String() + "/token", Client: exchange.NewHTTPClient(nil)}, PublicKey: key, SessionID: secret.New("local-session-0001")}
	if _, err := ex.Exchange(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestFlagsRequiredPerMode(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--auth", "service-account", "--ca-out", "x", "--credential-out", "x"},
		{"--auth", "bearer", "--credential-out", "x"},
		{"--auth", "magic", "--public-key-out", "x"},
		{"--auth", "bearer", "--ca-out", "x"},
	} {
		if err := run(t.Context(), args, io.Discard, nil); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}
