package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/fakeissuer"
)

const sessionID = "session-7f3a9c21-secret"

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	pubPEM  string
)

func testKey() (*rsa.PrivateKey, string) {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		key, pubPEM = k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	})
	return key, pubPEM
}

// harness is one tokend invocation's surroundings: a fake control plane on
// loopback, a token directory, and an environment.
type harness struct {
	t      *testing.T
	iss    *fakeissuer.Issuer
	srv    *httptest.Server
	dir    string
	file   string
	env    map[string]string
	stdout bytes.Buffer
	stderr syncBuffer
}

func newHarness(t *testing.T) *harness {
	k, pub := testKey()
	h := &harness{t: t, iss: &fakeissuer.Issuer{Key: k}, dir: t.TempDir()}
	h.srv = httptest.NewServer(h.iss)
	t.Cleanup(h.srv.Close)
	h.file = filepath.Join(h.dir, "token")
	h.env = map[string]string{
		"AMBIENT_CP_TOKEN_URL":        h.srv.URL + "/token",
		"AMBIENT_CP_TOKEN_PUBLIC_KEY": base64.StdEncoding.EncodeToString([]byte(pub)),
		"SESSION_ID":                  sessionID,
		"TOKEND_TOKEN_FILE":           h.file,
		"TOKEND_HEALTH_ADDR":          "127.0.0.1:0",
		"LOG_LEVEL":                   "debug",
	}
	return h
}

func (h *harness) run(ctx context.Context, args ...string) error {
	return run(ctx, args, func(k string) string { return h.env[k] }, &h.stdout, &h.stderr)
}

// token reads the token file; "" when it is absent.
func (h *harness) token() string {
	b, err := os.ReadFile(h.file)
	if err != nil {
		return ""
	}
	return string(b)
}

// assertNoSecrets fails when the captured output holds a secret: the
// session id, any token the issuer handed out, or the key material.
func (h *harness) assertNoSecrets(tokens ...string) {
	h.t.Helper()
	out := h.stdout.String() + h.stderr.String()
	_, pub := testKey()
	secrets := append([]string{sessionID, h.env["AMBIENT_CP_TOKEN_PUBLIC_KEY"][:40]}, tokens...)
	for _, line := range strings.Split(pub, "\n")[1:3] {
		secrets = append(secrets, line)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			h.t.Fatalf("output leaks a secret (%d bytes long)", len(s))
		}
	}
}

func exitOf(err error) int { return exitCode(err, &bytes.Buffer{}) }

func TestInitWritesToken(t *testing.T) {
	h := newHarness(t)
	if err := h.run(t.Context(), "init"); err != nil {
		t.Fatalf("init: %v\n%s", err, h.stderr.String())
	}
	got := h.token()
	if got == "" || got != h.iss.Current() {
		t.Fatalf("token file does not hold the issued token")
	}
	fi, _ := os.Stat(h.file)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if entries, err := os.ReadDir(h.dir); err != nil || len(entries) != 1 {
		t.Errorf("token directory holds %d entries (%v), want the token file alone", len(entries), err)
	}
	if !strings.Contains(h.stderr.String(), "token updated") {
		t.Errorf("no info line for the new token:\n%s", h.stderr.String())
	}
	h.assertNoSecrets(got)

	// check passes on it, and fails once --max-age is exceeded.
	h.stdout.Reset()
	if err := h.run(t.Context(), "check"); err != nil || !strings.HasPrefix(h.stdout.String(), "ok: token ") {
		t.Fatalf("check: %v, %q", err, h.stdout.String())
	}
	if err := h.run(t.Context(), "check", "--max-age=1ns"); exitOf(err) != 1 {
		t.Fatalf("check --max-age=1ns: %v, want exit 1", err)
	}
	h.assertNoSecrets(got)
}

func TestInitFailures(t *testing.T) {
	tests := []struct {
		name     string
		faults   []fakeissuer.Fault
		env      map[string]string
		code     int
		want     string
		requests int64
	}{
		{name: "401", faults: []fakeissuer.Fault{fakeissuer.Status(401)}, code: 1, want: "401 Unauthorized: wrong public key", requests: 1},
		{name: "403", faults: []fakeissuer.Fault{fakeissuer.Status(403)}, code: 1, want: "403 Forbidden: session id rejected", requests: 1},
		{name: "404", faults: []fakeissuer.Fault{fakeissuer.Status(404)}, code: 1, want: "404", requests: 1},
		{name: "redirect", faults: []fakeissuer.Fault{fakeissuer.Redirect("/elsewhere")}, code: 1, want: "redirect refused", requests: 1},
		{name: "retries then succeeds", faults: []fakeissuer.Fault{fakeissuer.Status(503), fakeissuer.Body("not json")}, env: map[string]string{"TOKEND_MAX_BACKOFF": "50ms"}, code: 0, requests: 3},
		{name: "timeout", faults: repeat(fakeissuer.Status(500), 10), env: map[string]string{"TOKEND_INIT_TIMEOUT": "1500ms"}, code: 1, want: "no token before the deadline", requests: 2},
		{name: "invalid config makes no request", env: map[string]string{"SESSION_ID": "short", "TOKEND_FILE_MODE": "9"}, code: 2, requests: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for k, v := range tt.env {
				h.env[k] = v
			}
			h.iss.Push(tt.faults...)
			err := h.run(t.Context(), "init")
			if got := exitOf(err); got != tt.code {
				t.Fatalf("exit %d, want %d (err %v)\n%s", got, tt.code, err, h.stderr.String())
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if got := h.iss.Requests(); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if tt.code != 0 {
				if _, err := os.Stat(h.file); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("token file exists after a failed init")
				}
			}
			h.assertNoSecrets(h.iss.Current())
		})
	}
}

func repeat(f fakeissuer.Fault, n int) []fakeissuer.Fault {
	out := make([]fakeissuer.Fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// TestRunRotatesAndNeverExposesABadFile runs the sidecar with a fast cadence
// against an issuer that mints a new token on every request, with faults in
// between, while readers reopen the file in a loop: every read must be a
// whole token that the issuer signed, and the file must move on.
func TestRunRotatesAndNeverExposesABadFile(t *testing.T) {
	h := newHarness(t)
	h.iss.CacheFloor = -1
	h.env["TOKEND_REFRESH_INTERVAL"] = "20ms"
	h.env["TOKEND_MAX_BACKOFF"] = "100ms"
	h.env["TOKEND_HEALTH_ADDR"] = ""
	h.iss.Push(fakeissuer.Body(`{"token":"half`), fakeissuer.Status(502))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()

	seen := map[string]bool{}
	var reads, bad int
	deadline := time.After(20 * time.Second)
	for len(seen) < 8 {
		select {
		case <-deadline:
			t.Fatalf("saw %d distinct tokens before the deadline", len(seen))
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		b, err := os.ReadFile(h.file)
		if errors.Is(err, os.ErrNotExist) && len(seen) == 0 {
			continue
		}
		reads++
		if err != nil || !validJWT(string(b)) {
			bad++
			continue
		}
		seen[string(b)] = true
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if bad != 0 {
		t.Fatalf("%d of %d reads saw a bad token file", bad, reads)
	}
	var tokens []string
	for tok := range seen {
		tokens = append(tokens, tok)
	}
	h.assertNoSecrets(tokens...)
	if !strings.Contains(h.stderr.String(), "status=502") {
		t.Errorf("the 502 was not logged as a retry")
	}
}

// validJWT reports whether tok is a JWT whose signature the fake control
// plane's key verifies: any torn or mixed write would fail.
func validJWT(tok string) bool {
	k, _ := testKey()
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(tok[:i]))
	return rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig) == nil
}

func TestRunRefreshesAheadOfShortLivedTokens(t *testing.T) {
	h := newHarness(t)
	h.iss.Lifetime = 1500 * time.Millisecond
	h.iss.CacheFloor = -1
	h.env["TOKEND_REFRESH_INTERVAL"] = "1h"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()
	deadline := time.After(15 * time.Second)
	for h.iss.Issued() < 3 {
		select {
		case <-deadline:
			t.Fatalf("only %d tokens issued: no refresh ahead of expiry with a 1h interval", h.iss.Issued())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestUsageAndVersion(t *testing.T) {
	h := newHarness(t)
	if err := h.run(t.Context(), "version"); err != nil || !strings.HasPrefix(h.stdout.String(), "tokend ") {
		t.Errorf("version: %v %q", err, h.stdout.String())
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"init", "-h"}, {"run", "--help"}, {"check", "-h"}} {
		if err := h.run(t.Context(), args...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"run", "--nope"}} {
		if code := exitOf(h.run(t.Context(), args...)); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	h.assertNoSecrets()
}

func TestCheckFailures(t *testing.T) {
	h := newHarness(t)
	expired := fakeJWT(time.Now().Add(-time.Minute))
	tests := []struct {
		name, content, want string
	}{
		{"missing", "", "no such file"},
		{"empty", "\x00empty", "is empty"},
		{"expired jwt", expired, "expired at"},
		{"whitespace", "abc def", "whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(h.file)
			switch tt.content {
			case "":
			case "\x00empty":
				os.WriteFile(h.file, nil, 0o640)
			default:
				os.WriteFile(h.file, []byte(tt.content), 0o640)
			}
			err := h.run(t.Context(), "check")
			if exitOf(err) != 1 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check: %v, want exit 1 mentioning %q", err, tt.want)
			}
		})
	}
	h.assertNoSecrets(expired)
}

func fakeJWT(exp time.Time) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		e.EncodeToString([]byte(`{"exp":`+strconv.FormatInt(exp.Unix(), 10)+`}`)) + ".sig"
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
