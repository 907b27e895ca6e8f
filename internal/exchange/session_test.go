package exchange_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/version"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

const sessionID = "sess-0123456789abcdef"

// recorder wraps the fake control plane and keeps every request's headers.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	next http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func newSession(t testing.TB, url string) *exchange.EncryptedSession {
	return &exchange.EncryptedSession{
		Endpoint:  exchange.Endpoint{URL: url + "/token", Client: exchange.NewHTTPClient(nil)},
		PublicKey: &testkit.RSAKey().PublicKey,
		SessionID: secret.New(sessionID),
	}
}

func TestEncryptedSessionWireCompatible(t *testing.T) {
	iss := &fakeissuer.Issuer{Key: testkit.RSAKey()}
	rec := &recorder{next: iss}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ex := newSession(t, srv.URL)

	var tokens []string
	for range 2 {
		tok, err := ex.Exchange(t.Context())
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		tokens = append(tokens, tok.Value.Reveal())
		if tok.ExpirySource != "jwt" || tok.Expiry.IsZero() {
			t.Errorf("expiry not read from the JWT: %v %q", tok.Expiry, tok.ExpirySource)
		}
	}
	if tokens[0] != iss.Current() || tokens[1] != tokens[0] {
		t.Errorf("tokens do not match the issuer's cached token")
	}
	if got := iss.Sessions(); len(got) != 2 || got[0] != sessionID {
		t.Errorf("issuer decrypted %d sessions, want the session id twice", len(got))
	}
	var cts []string
	for _, r := range rec.reqs {
		if r.Method != http.MethodGet || r.URL.Path != "/token" {
			t.Errorf("request %s %s, want GET /token", r.Method, r.URL.Path)
		}
		if ua := r.Header.Get("User-Agent"); ua != "tokend/"+version.Get().Version {
			t.Errorf("User-Agent = %q", ua)
		}
		h := r.Header.Get("Authorization")
		ct, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			t.Fatalf("Authorization header lacks the case-sensitive Bearer prefix")
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(ct)
		if err != nil {
			t.Fatalf("credential is not padded standard base64: %v", err)
		}
		pt, err := rsa.DecryptOAEP(sha256.New(), nil, testkit.RSAKey(), raw, nil)
		if err != nil || string(pt) != sessionID {
			t.Fatalf("credential does not decrypt to the session id (err %v)", err)
		}
		cts = append(cts, ct)
	}
	if len(cts) != 2 || cts[0] == cts[1] {
		t.Errorf("ciphertext reused between requests")
	}
}

// TestControlPlaneRejectsVariants proves the stand-in rejects each credential
// the control plane rejects, so that passing the test above means something.
func TestControlPlaneRejectsVariants(t *testing.T) {
	k := testkit.RSAKey()
	srv := httptest.NewServer(&fakeissuer.Issuer{Key: k})
	defer srv.Close()
	enc := func(sid string) []byte {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte(sid), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	other := testkit.OtherRSAKey()
	wrongKey, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &other.PublicKey, []byte(sessionID), nil)
	labelled, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte(sessionID), []byte("label"))
	good := enc(sessionID)
	tests := []struct {
		name, method, auth string
		want               int
	}{
		{"good", "GET", "Bearer " + base64.StdEncoding.EncodeToString(good), 200},
		{"lowercase bearer", "GET", "bearer " + base64.StdEncoding.EncodeToString(good), 401},
		{"no header", "GET", "", 401},
		{"unpadded base64", "GET", "Bearer " + base64.RawStdEncoding.EncodeToString(good), 401},
		{"url-safe base64", "GET", "Bearer " + base64.URLEncoding.EncodeToString(urlSafeDiffers(t, enc)), 401},
		{"wrong key", "GET", "Bearer " + base64.StdEncoding.EncodeToString(wrongKey), 401},
		{"non-empty label", "GET", "Bearer " + base64.StdEncoding.EncodeToString(labelled), 401},
		{"short session id", "GET", "Bearer " + base64.StdEncoding.EncodeToString(enc("short")), 403},
		{"session id with space", "GET", "Bearer " + base64.StdEncoding.EncodeToString(enc("has a space")), 403},
		{"POST", "POST", "Bearer " + base64.StdEncoding.EncodeToString(good), 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/token?ignored=1", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// urlSafeDiffers returns a ciphertext whose URL-safe encoding differs from
// its standard encoding (it holds a '+' or '/').
func urlSafeDiffers(t *testing.T, enc func(string) []byte) []byte {
	for range 100 {
		ct := enc(sessionID)
		if strings.ContainsAny(base64.StdEncoding.EncodeToString(ct), "+/") {
			return ct
		}
	}
	t.Fatal("no ciphertext with + or / in 100 tries")
	return nil
}

func TestEncryptedSessionErrors(t *testing.T) {
	tests := []struct {
		name      string
		fault     fakeissuer.Fault
		status    int
		retryable bool
		hint      string
		after     time.Duration
		invalid   bool
	}{
		{name: "401", fault: fakeissuer.Status(401), status: 401, hint: "wrong public key"},
		{name: "403", fault: fakeissuer.Status(403), status: 403, hint: "session id rejected"},
		{name: "404", fault: fakeissuer.Status(404), status: 404, hint: "AMBIENT_CP_TOKEN_URL"},
		{name: "408", fault: fakeissuer.Status(408), status: 408, retryable: true},
		{name: "429 retry-after", fault: fakeissuer.Status(429, "Retry-After", "7"), status: 429, retryable: true, after: 7 * time.Second},
		{name: "500", fault: fakeissuer.Status(500), status: 500, retryable: true, hint: "could not mint"},
		{name: "503 http-date", fault: fakeissuer.Status(503, "Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat)), status: 503, retryable: true, after: 85 * time.Second},
		{name: "redirect", fault: fakeissuer.Redirect("http://127.0.0.1:1/elsewhere"), status: 302, hint: "redirect refused"},
		{name: "not json", fault: fakeissuer.Body("<html>proxy</html>"), retryable: true, invalid: true},
		{name: "no token", fault: fakeissuer.Body(`{"access_token":"abc"}`), retryable: true, invalid: true},
		{name: "empty token", fault: fakeissuer.Body(`{"token":""}`), retryable: true, invalid: true},
		{name: "token with CRLF", fault: fakeissuer.Body(`{"token":"abc\r\nX-Evil: 1"}`), retryable: true, invalid: true},
		{name: "oversized", fault: fakeissuer.Body(`{"token":"` + strings.Repeat("a", 70<<10) + `"}`), retryable: true, invalid: true},
		{name: "expired", fault: fakeissuer.Body(`{"token":"abcdefgh","expires_at":1000}`), retryable: true},
		{name: "bad expires_at", fault: fakeissuer.Body(`{"token":"abcdefgh","expires_at":"tomorrow"}`), retryable: true, invalid: true},
	}
	iss := &fakeissuer.Issuer{Key: testkit.RSAKey()}
	srv := httptest.NewServer(iss)
	defer srv.Close()
	ex := newSession(t, srv.URL)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss.Push(tt.fault)
			_, err := ex.Exchange(t.Context())
			if err == nil {
				t.Fatal("Exchange succeeded")
			}
			if got := exchange.StatusCode(err); got != tt.status {
				t.Errorf("status %d, want %d (%v)", got, tt.status, err)
			}
			if got := exchange.Retryable(err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v (%v)", got, tt.retryable, err)
			}
			if !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("error %q lacks %q", err, tt.hint)
			}
			if after, _ := exchange.RetryAfter(err); after < tt.after || (tt.after == 0 && after != 0) {
				t.Errorf("RetryAfter = %v, want about %v", after, tt.after)
			}
			if got := errors.Is(err, exchange.ErrInvalidResponse); got != tt.invalid {
				t.Errorf("invalid response = %v, want %v", got, tt.invalid)
			}
			if strings.Contains(err.Error(), sessionID) {
				t.Errorf("error leaks the session id")
			}
		})
	}
}

func TestEncryptedSessionTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ex := newSession(t, url)
	_, err := ex.Exchange(t.Context())
	if err == nil || !exchange.Retryable(err) {
		t.Fatalf("connection refused: err %v, want a retryable error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ex.Exchange(ctx); err == nil || exchange.Retryable(err) {
		t.Fatalf("cancelled context: err %v, want a permanent error", err)
	}
}

func BenchmarkEncryptedSessionExchange(b *testing.B) {
	srv := httptest.NewServer(&fakeissuer.Issuer{Key: testkit.RSAKey()})
	defer srv.Close()
	ex := newSession(b, srv.URL)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Exchange(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
