package exchange_test

import (
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/jwtexp"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

// TestBearerRefusals: the successor's refusals, as Classify reads the
// bearer mode's errors, with the number of requests each costs.
func TestBearerRefusals(t *testing.T) {
	const capability = "the-capability-value"
	dir := t.TempDir()
	file := filepath.Join(dir, "capability")
	if err := os.WriteFile(file, []byte("another-capability\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		ex       exchange.Bearer
		fault    fakeissuer.Fault
		want     exchange.Class
		hint     string
		requests int
	}{
		{name: "403 revoked", ex: exchange.Bearer{Credential: secret.New(capability)},
			fault: fakeissuer.Status(403), want: exchange.Refused, hint: "runner access revoked", requests: 1},
		{name: "401 from a variable", ex: exchange.Bearer{Credential: secret.New("stale"), CredentialSource: "AMBIENT_RUNNER_BOOTSTRAP_TOKEN"},
			want: exchange.Refused, hint: "AMBIENT_RUNNER_BOOTSTRAP_TOKEN is not this run's capability", requests: 1},
		{name: "401 from a file read again unchanged", ex: exchange.Bearer{CredentialFile: file, CredentialSource: "TOKEND_CREDENTIAL_FILE " + file},
			want: exchange.Refused, hint: "TOKEND_CREDENTIAL_FILE " + file + " is not this run's capability", requests: 1},
		{name: "503", ex: exchange.Bearer{Credential: secret.New(capability)},
			fault: fakeissuer.Status(503), want: exchange.Transient, requests: 1},
	}
	iss := &fakeissuer.BearerIssuer{Capability: capability}
	srv := httptest.NewTLSServer(iss)
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := iss.Requests()
			if tt.fault != nil {
				iss.Push(tt.fault)
			}
			ex := tt.ex
			ex.URL, ex.Client = srv.URL+"/token", exchange.NewHTTPClient(trusting(srv))
			_, err := ex.Exchange(t.Context())
			if got := exchange.Classify(err); got != tt.want {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("error %q lacks %q", err, tt.hint)
			}
			if n := iss.Requests() - before; n != int64(tt.requests) {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			noSecrets(t, err, capability, "another-capability", "stale")
		})
	}
}

// TestBearerFileReplacedDuringA401: the credential file's owner replaces it
// while the old credential is on its way; the 401 is not a refusal, the
// new credential is sent at once, in the same exchange.
func TestBearerFileReplacedDuringA401(t *testing.T) {
	file := filepath.Join(t.TempDir(), "capability")
	if err := os.WriteFile(file, []byte("old-capability"), 0o600); err != nil {
		t.Fatal(err)
	}
	iss := &fakeissuer.BearerIssuer{Capability: "new-capability"}
	iss.Push(func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(file, []byte("new-capability\n"), 0o600); err != nil {
			t.Error(err)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	srv := httptest.NewTLSServer(iss)
	defer srv.Close()
	ex := &exchange.Bearer{Endpoint: exchange.Endpoint{URL: srv.URL + "/token", Client: exchange.NewHTTPClient(trusting(srv))}, CredentialFile: file}
	if _, err := ex.Exchange(t.Context()); err != nil {
		t.Fatalf("exchange after the file was replaced: %v", err)
	}
	if n := iss.Requests(); n != 2 {
		t.Errorf("%d requests, want 2 (the old credential, then the new one)", n)
	}
}

// TestCapabilityExpiry: the capability's exp claim is read (never
// verified), carried on each token, and once it has passed a failed
// exchange is a refusal, whatever the issuer answered; the issuer's 200
// still wins over tokend's clock.
func TestCapabilityExpiry(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	exp := now.Add(36 * time.Hour)
	capability := testkit.Capability(exp)
	if got, ok := jwtexp.Expiry(capability); !ok || !got.Equal(exp) {
		t.Fatalf("jwtexp.Expiry = %v, %v; want %v", got, ok, exp)
	}
	for _, opaque := range []string{"opaque-capability", "acp-runner-v1.bm90IGpzb24.sig", "a.b"} {
		if _, ok := jwtexp.Expiry(opaque); ok {
			t.Errorf("jwtexp.Expiry(%q) found an expiry", opaque)
		}
	}
	iss := &fakeissuer.BearerIssuer{Capability: capability, Now: func() time.Time { return now }}
	srv := httptest.NewTLSServer(iss)
	defer srv.Close()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	ex := &exchange.Bearer{
		Endpoint:   exchange.Endpoint{URL: srv.URL + "/token", Client: exchange.NewHTTPClient(trusting(srv)), Now: func() time.Time { return *clock.Load() }},
		Credential: secret.New(capability),
	}
	tok, err := ex.Exchange(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !tok.CredentialExpiry.Equal(exp.Add(-tok.Skew)) {
		t.Errorf("token's CredentialExpiry = %v, want the capability's %v", tok.CredentialExpiry, exp)
	}

	after := exp.Add(time.Second)
	clock.Store(&after)
	if _, err := ex.Exchange(t.Context()); err != nil {
		t.Errorf("the issuer answered 200 after the claim by tokend's clock: %v, want the token", err)
	}
	for _, f := range []fakeissuer.Fault{fakeissuer.Status(401), fakeissuer.Status(503)} {
		iss.Push(f)
		_, err := ex.Exchange(t.Context())
		if !errors.Is(err, exchange.ErrCredentialExpired) || exchange.Classify(err) != exchange.Refused {
			t.Errorf("failed exchange after the capability's exp: %v (%v), want a refusal wrapping ErrCredentialExpired", err, exchange.Classify(err))
		}
		if err != nil && !strings.Contains(err.Error(), exp.UTC().Format(time.RFC3339)) {
			t.Errorf("error %q does not say when the capability expired", err)
		}
		noSecrets(t, err, capability)
	}
}

// swapIssuer serves one of two encrypted-session issuers, so that a test
// can rotate the control plane's key.
type swapIssuer struct {
	cur atomic.Pointer[fakeissuer.Issuer]
}

func (s *swapIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.cur.Load().ServeHTTP(w, r) }

// TestPublicKeyRotation: a key given as a file follows the control plane's
// rotation without a restart: a replaced file is read at the next exchange,
// and a 401 is called a refusal only after the file, read again, holds the
// key that was used. A key given by variable cannot change: its 401 is a
// refusal at once, and the hint names the variable.
func TestPublicKeyRotation(t *testing.T) {
	oldKey, newKey := testkit.RSAKey(), testkit.OtherRSAKey()
	sw := &swapIssuer{}
	sw.cur.Store(&fakeissuer.Issuer{Key: oldKey})
	srv := httptest.NewServer(sw)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "cp.pub")
	writeKey := func(k *rsa.PrivateKey) {
		t.Helper()
		if err := os.WriteFile(file, []byte(testkit.PublicPEM(k)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeKey(oldKey)
	fromFile := &exchange.EncryptedSession{Endpoint: exchange.Endpoint{URL: srv.URL + "/token", Client: exchange.NewHTTPClient(nil)}, PublicKeyFile: file, SessionID: secret.New(sessionID)}
	fromVar := newSession(t, srv.URL)
	if _, err := fromFile.Exchange(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Rotated, file first: the next exchange reads the new key.
	rotated := &fakeissuer.Issuer{Key: newKey}
	writeKey(newKey)
	sw.cur.Store(rotated)
	if _, err := fromFile.Exchange(t.Context()); err != nil || rotated.Requests() != 1 {
		t.Fatalf("after the key file was replaced: %v after %d requests, want the token after 1", err, rotated.Requests())
	}

	// Rotated back, the file replaced while the request is on its way:
	// the 401 makes tokend read the file again and send once more.
	back := &fakeissuer.Issuer{Key: oldKey}
	back.Push(func(w http.ResponseWriter, r *http.Request) {
		writeKey(oldKey)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	sw.cur.Store(back)
	if _, err := fromFile.Exchange(t.Context()); err != nil || back.Requests() != 2 {
		t.Fatalf("key file replaced during a 401: %v after %d requests, want the token after 2", err, back.Requests())
	}

	// The control plane rotates, the file does not follow: a refusal,
	// naming the file, after one request.
	sw.cur.Store(rotated)
	before := rotated.Requests()
	_, err := fromFile.Exchange(t.Context())
	if exchange.Classify(err) != exchange.Refused || !strings.Contains(err.Error(), "TOKEND_PUBLIC_KEY_FILE ("+file+")") ||
		strings.Contains(err.Error(), "AMBIENT_CP_TOKEN_PUBLIC_KEY") {
		t.Errorf("stale key file: %v (%v), want a refusal naming the file alone", err, exchange.Classify(err))
	}
	if n := rotated.Requests() - before; n != 1 {
		t.Errorf("stale key file: %d requests, want 1", n)
	}
	_, err = fromVar.Exchange(t.Context())
	if exchange.Classify(err) != exchange.Refused || !strings.Contains(err.Error(), "AMBIENT_CP_TOKEN_PUBLIC_KEY is not") {
		t.Errorf("stale key variable: %v (%v), want a refusal naming the variable", err, exchange.Classify(err))
	}

	// The file goes bad: a transient failure naming it, no request sent.
	if err := os.WriteFile(file, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	before = rotated.Requests()
	_, err = fromFile.Exchange(t.Context())
	if !errors.Is(err, exchange.ErrPublicKey) || exchange.Classify(err) != exchange.Transient || !strings.Contains(err.Error(), file) {
		t.Errorf("bad key file: %v, want a transient ErrPublicKey naming the file", err)
	}
	if rotated.Requests() != before {
		t.Errorf("a request was sent without a key")
	}
}
