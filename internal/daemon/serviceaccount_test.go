package daemon_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/config"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/internal/filewriter"
	"github.com/ambient-code/tokend/test/testkit"
)

const refreshCredential = "refresh-cred-daemon-test"

// events is a slog.Handler that keeps every line, for the leak check, and
// sends each message with its error attribute to a channel.
type events struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan string
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *events) WithGroup(string) slog.Handler            { return e }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	e.mu.Lock()
	e.buf.WriteString(line + "\n")
	e.mu.Unlock()
	select {
	case e.ch <- line:
	default:
	}
	return nil
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.String()
}

// TestRunServiceAccount runs the daemon in service-account mode against the
// TLS stand-in: it waits for a ServiceAccount token that is not projected
// yet, then follows the kubelet's rotation of it.
func TestRunServiceAccount(t *testing.T) {
	iss := &fakeissuer.ServiceAccountIssuer{Key: testkit.RSAKey(), Lifetime: 2 * time.Second}
	bearers := make(chan string, 64)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case bearers <- strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "):
		default:
		}
		iss.ServeHTTP(w, r)
	}))
	defer srv.Close()

	dir := t.TempDir()
	caPath := filepath.Join(dir, "cp-ca.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	os.Mkdir(filepath.Join(dir, "sa"), 0o755)
	saPath := filepath.Join(dir, "sa", "token")
	tokenFile := filepath.Join(dir, "token")
	env := map[string]string{
		"TOKEND_AUTH":                           config.AuthServiceAccount,
		"AMBIENT_CP_TOKEN_URL":                  srv.URL + "/token",
		"AMBIENT_WORKLOAD_IDENTITY_PATH":        saPath,
		"AMBIENT_CAPABILITY_REFRESH_CREDENTIAL": refreshCredential,
		"AMBIENT_CP_CA_PATH":                    caPath,
		"TOKEND_TOKEN_FILE":                     tokenFile,
	}
	cfg, err := config.Parse(config.CmdRun, []string{"--health-addr="}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := &events{ch: make(chan string, 64)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, daemon.Deps{Logger: slog.New(log)}) }()

	// Phase 1: the kubelet has not projected the token yet.
	await(t, log.ch, "a failure naming the missing token file", func(line string) bool {
		return strings.HasPrefix(line, "exchange failed") && strings.Contains(line, saPath) && strings.Contains(line, "no such file")
	})
	if n := iss.Requests(); n != 0 {
		t.Fatalf("%d requests sent without a ServiceAccount token", n)
	}

	// Phase 2: the token appears, then rotates; each exchange carries the
	// file's current content and the token file follows.
	var sa []string
	for range 2 {
		v, err := iss.MintServiceAccountToken(fakeissuer.ServiceAccountAudience, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := filewriter.New(saPath, 0o600).Write([]byte(v + "\n")); err != nil {
			t.Fatal(err)
		}
		sa = append(sa, v)
		await(t, bearers, "a request with the rotated ServiceAccount token", func(b string) bool { return b == v })
		// The refresher is sequential: the next request follows the store.
		await(t, bearers, "the next request", func(string) bool { return true })
		got, _ := os.ReadFile(tokenFile)
		if !issuedFor(iss, string(got), v) {
			t.Fatalf("token file does not hold a token issued for the current ServiceAccount token")
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, x := range iss.Exchanges() {
		if x.RefreshCredential != refreshCredential {
			t.Fatalf("an exchange lacked the refresh credential")
		}
	}
	out := log.String()
	secrets := append(sa, refreshCredential)
	for _, x := range iss.Exchanges() {
		secrets = append(secrets, x.Token)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("the log holds a secret")
		}
	}
}

// await reads ch until ok accepts a value, failing after testkit.Patience.
func await(t *testing.T, ch <-chan string, what string, ok func(string) bool) {
	t.Helper()
	timeout := time.After(testkit.Patience)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func issuedFor(iss *fakeissuer.ServiceAccountIssuer, token, sa string) bool {
	for _, x := range iss.Exchanges() {
		if x.Token == token {
			return x.ServiceAccountToken == sa
		}
	}
	return false
}
