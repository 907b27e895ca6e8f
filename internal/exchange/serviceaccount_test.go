package exchange_test

import (
	"bytes"
	"crypto/x509"
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
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

const refreshCredential = "refresh-cred-0123456789"

// seen is one request as a service-account server received it.
type seen struct {
	method, path, contentType, auth, refresh string
	body                                     []byte
}

// saRecorder keeps every request, body included, then hands it on.
type saRecorder struct {
	mu   sync.Mutex
	reqs []seen
	next http.Handler
}

func (r *saRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.reqs = append(r.reqs, seen{req.Method, req.URL.Path, req.Header.Get("Content-Type"),
		req.Header.Get("Authorization"), req.Header.Get(exchange.RefreshHeader), body})
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *saRecorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// saFixture is a TLS fake control plane and an exchanger that trusts it.
type saFixture struct {
	iss  *fakeissuer.ServiceAccountIssuer
	rec  *saRecorder
	srv  *httptest.Server
	ex   *exchange.ServiceAccount
	path string
}

func newSAFixture(t *testing.T) *saFixture {
	t.Helper()
	iss := &fakeissuer.ServiceAccountIssuer{Key: testkit.RSAKey()}
	rec := &saRecorder{next: iss}
	srv := httptest.NewTLSServer(rec)
	t.Cleanup(srv.Close)
	f := &saFixture{iss: iss, rec: rec, srv: srv, path: filepath.Join(t.TempDir(), "token")}
	f.ex = &exchange.ServiceAccount{
		URL:               srv.URL + "/token",
		IdentityPath:      f.path,
		RefreshCredential: secret.New(refreshCredential),
		Client:            exchange.NewHTTPClient(trusting(srv)),
		UserAgent:         "tokend/test",
	}
	return f
}

func trusting(srv *httptest.Server) *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return roots
}

// rotate writes a fresh ServiceAccount token to the file, as the kubelet
// does, and returns it.
func (f *saFixture) rotate(t *testing.T) string {
	t.Helper()
	sa, err := f.iss.MintServiceAccountToken(fakeissuer.ServiceAccountAudience, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path, []byte(sa+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return sa
}

// noSecrets fails when err mentions a credential.
func noSecrets(t *testing.T, err error, sa ...string) {
	t.Helper()
	for _, s := range append(sa, refreshCredential) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
}

func TestServiceAccountWire(t *testing.T) {
	f := newSAFixture(t)
	var bearers []string
	for i := range 2 {
		sa := f.rotate(t) // rotated between the two exchanges
		bearers = append(bearers, sa)
		before := time.Now().Truncate(time.Second) // expires_at is in whole seconds
		tok, err := f.ex.Exchange(t.Context())
		if err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if tok.Value.Reveal() != f.iss.Current() || tok.ExpirySource != "expires_at" {
			t.Errorf("exchange %d: token %s (expiry from %q), want the issued one from expires_at", i, tok.Value.Fingerprint(), tok.ExpirySource)
		}
		// Minted during the exchange, to live two minutes.
		if tok.Expiry.Before(before.Add(2*time.Minute)) || tok.Expiry.After(time.Now().Add(2*time.Minute)) {
			t.Errorf("exchange %d: expires at %v, want two minutes after it was minted", i, tok.Expiry)
		}
	}
	if bearers[0] == bearers[1] {
		t.Fatal("rotation did not change the ServiceAccount token")
	}
	reqs := f.rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.method != http.MethodPost || r.path != "/token" {
			t.Errorf("request %d: %s %s, want POST /token", i, r.method, r.path)
		}
		if r.contentType != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, r.contentType)
		}
		if string(r.body) != `{"grant":"runtime-only"}` {
			t.Errorf("request %d: body %q", i, r.body)
		}
		if r.auth != "Bearer "+bearers[i] {
			t.Errorf("request %d: bearer is not the file's current content (%s, want %s)", i,
				secret.Fingerprint(strings.TrimPrefix(r.auth, "Bearer ")), secret.Fingerprint(bearers[i]))
		}
		if r.refresh != refreshCredential {
			t.Errorf("request %d: refresh header not sent", i)
		}
	}
	if got := f.iss.Exchanges(); len(got) != 2 || got[1].ServiceAccountToken != bearers[1] || got[1].RefreshCredential != refreshCredential {
		t.Errorf("the issuer did not accept both rotated ServiceAccount tokens")
	}
}

func TestServiceAccountOmitsUnsetRefreshHeader(t *testing.T) {
	f := newSAFixture(t)
	f.rotate(t)
	ex := *f.ex
	ex.RefreshCredential = secret.String{}
	if _, err := ex.Exchange(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := f.rec.requests()[0]; r.refresh != "" {
		t.Errorf("refresh header sent although unset")
	}
}

func TestServiceAccountRefusesPlainHTTP(t *testing.T) {
	iss := &fakeissuer.ServiceAccountIssuer{Key: testkit.RSAKey()}
	srv := httptest.NewServer(iss)
	defer srv.Close()
	f := newSAFixture(t)
	sa := f.rotate(t)
	ex := *f.ex
	ex.URL = srv.URL + "/token"
	_, err := ex.Exchange(t.Context())
	if !errors.Is(err, exchange.ErrInsecureURL) || exchange.Retryable(err) {
		t.Fatalf("err = %v, want permanent ErrInsecureURL", err)
	}
	if iss.Requests() != 0 {
		t.Errorf("%d requests reached the plain-http server", iss.Requests())
	}
	noSecrets(t, err, sa)
}

func TestServiceAccountRefusesRedirects(t *testing.T) {
	target := newSAFixture(t)
	f := newSAFixture(t)
	sa := f.rotate(t)
	// Even a client that would follow redirects must not.
	following := exchange.NewHTTPClient(trusting(f.srv))
	following.CheckRedirect = nil
	for name, client := range map[string]*http.Client{"NewHTTPClient": f.ex.Client, "following client": following} {
		t.Run(name, func(t *testing.T) {
			f.iss.Push(fakeissuer.Redirect(target.srv.URL + "/token"))
			ex := *f.ex
			ex.Client = client
			_, err := ex.Exchange(t.Context())
			if exchange.StatusCode(err) != http.StatusFound || exchange.Retryable(err) || !strings.Contains(err.Error(), "redirect refused") {
				t.Fatalf("err = %v, want a permanent 302 refusal", err)
			}
			noSecrets(t, err, sa)
		})
	}
	if n := target.iss.Requests(); n != 0 {
		t.Errorf("the redirect target received %d requests", n)
	}
}

func TestServiceAccountRetriesInsideTheDeadline(t *testing.T) {
	tests := []struct {
		name   string
		faults []fakeissuer.Fault
	}{
		{name: "two 503s", faults: []fakeissuer.Fault{fakeissuer.Status(503), fakeissuer.Status(503)}},
		{name: "502 then 504", faults: []fakeissuer.Fault{fakeissuer.Status(502), fakeissuer.Status(504)}},
		{name: "429 with a Retry-After that fits", faults: []fakeissuer.Fault{fakeissuer.Status(429, "Retry-After", "1")}},
		{name: "401", faults: []fakeissuer.Fault{fakeissuer.Status(401)}},
		{name: "connection dropped", faults: []fakeissuer.Fault{hangUp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSAFixture(t)
			f.rotate(t)
			f.iss.Push(tt.faults...)
			if _, err := f.ex.Exchange(t.Context()); err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if got, want := f.iss.Requests(), int64(len(tt.faults)+1); got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
		})
	}
}

// hangUp drops the connection without an answer: a transport error.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestServiceAccountRereadsTheFileOnRetry(t *testing.T) {
	// The kubelet rotates the token while the control plane rejects the
	// old one: the retry inside the same exchange carries the new one.
	f := newSAFixture(t)
	f.rotate(t)
	var fresh string
	f.iss.Push(func(w http.ResponseWriter, r *http.Request) {
		fresh = f.rotate(t)
		fakeissuer.Status(401)(w, r)
	})
	if _, err := f.ex.Exchange(t.Context()); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	reqs := f.rec.requests()
	if len(reqs) != 2 || reqs[1].auth != "Bearer "+fresh || reqs[0].auth == reqs[1].auth {
		t.Fatalf("the retry did not carry the rotated ServiceAccount token")
	}
}

func TestServiceAccountDoesNotRetryInside(t *testing.T) {
	tests := []struct {
		name      string
		fault     fakeissuer.Fault
		status    int
		retryable bool
		hint      string
		invalid   bool
		after     time.Duration
	}{
		{name: "400", fault: fakeissuer.Status(400), status: 400, hint: "did not accept the request"},
		{name: "403", fault: fakeissuer.Status(403), status: 403, hint: "may not obtain a token"},
		{name: "404", fault: fakeissuer.Status(404), status: 404, hint: "AMBIENT_CP_TOKEN_URL"},
		{name: "405", fault: fakeissuer.Status(405), status: 405, hint: "encrypted-session endpoint"},
		{name: "500", fault: fakeissuer.Status(500), status: 500, retryable: true, hint: "could not mint"},
		{name: "429 with a Retry-After beyond the deadline", fault: fakeissuer.Status(429, "Retry-After", "30"), status: 429, retryable: true, after: 30 * time.Second},
		{name: "not json", fault: fakeissuer.Body("<html>proxy</html>"), retryable: true, invalid: true},
		{name: "over 16 KiB", fault: fakeissuer.Body(`{"token":"abcdefgh","pad":"` + strings.Repeat("x", 16<<10) + `"}`), retryable: true, invalid: true, hint: "16384"},
		{name: "expired", fault: fakeissuer.Body(`{"token":"abcdefgh","expires_at":"2001-01-01T00:00:00Z"}`), retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSAFixture(t)
			sa := f.rotate(t)
			f.iss.Push(tt.fault)
			_, err := f.ex.Exchange(t.Context())
			if err == nil {
				t.Fatal("Exchange succeeded")
			}
			if n := f.iss.Requests(); n != 1 {
				t.Errorf("%d requests, want 1 (no retry inside the exchange)", n)
			}
			if got := exchange.StatusCode(err); got != tt.status {
				t.Errorf("status %d, want %d (%v)", got, tt.status, err)
			}
			if got := exchange.Retryable(err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v (%v)", got, tt.retryable, err)
			}
			if got := errors.Is(err, exchange.ErrInvalidResponse); got != tt.invalid {
				t.Errorf("invalid response = %v, want %v (%v)", got, tt.invalid, err)
			}
			if after, _ := exchange.RetryAfter(err); after != tt.after {
				t.Errorf("RetryAfter = %v, want %v", after, tt.after)
			}
			if !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("error %q lacks %q", err, tt.hint)
			}
			noSecrets(t, err, sa)
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestServiceAccountIdentityFileProblems(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
		mode                os.FileMode
		dir                 bool
	}{
		{name: "missing", want: "no such file"},
		{name: "empty", content: "", mode: 0o600, want: "is empty"},
		{name: "only a newline", content: "\n", mode: 0o600, want: "is empty"},
		{name: "a directory", dir: true, want: "is a directory"},
		{name: "inner space", content: "eyJh bGc.x.y", mode: 0o600, want: "offset 4"},
		{name: "unreadable", content: "eyJhbGc.x.y", mode: 0o000, want: "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode == 0 && tt.want == "permission denied" && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			switch {
			case tt.dir:
				os.Mkdir(path, 0o755)
			case tt.name != "missing":
				if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			f := newSAFixture(t)
			ex := *f.ex
			ex.IdentityPath = path
			_, err := ex.Exchange(t.Context())
			if !errors.Is(err, exchange.ErrIdentity) || !exchange.Retryable(err) {
				t.Fatalf("err = %v, want a retryable ErrIdentity", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the path and %q", err, tt.want)
			}
			if n := f.iss.Requests(); n != 0 {
				t.Errorf("%d requests sent without a ServiceAccount token", n)
			}
			noSecrets(t, err, "eyJhbGc", "bGc.x.y")
		})
	}
}

func ExampleServiceAccount() {
	// In a pod: the projected ServiceAccount token and the control plane's CA.
	roots := x509.NewCertPool() // add the PEM at AMBIENT_CP_CA_PATH
	ex := &exchange.ServiceAccount{
		URL:          "https://ambient-control-plane.ambient.svc:8443/token",
		IdentityPath: "/var/run/secrets/ambient/serviceaccount/token",
		Client:       exchange.NewHTTPClient(roots),
	}
	_ = exchange.Exchanger(ex)
	// Output:
}
