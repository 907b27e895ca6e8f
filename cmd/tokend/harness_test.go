package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

const sessionID = "session-7f3a9c21-secret"

// harness is one tokend invocation's surroundings: a fake control plane on
// loopback, a token directory, and an environment.
type harness struct {
	t      *testing.T
	iss    *fakeissuer.Issuer
	srv    *httptest.Server
	dir    string
	file   string
	env    map[string]string
	stdout testkit.Buffer
	stderr testkit.Buffer
	// events records what the in-process daemon did (see daemon).
	events testkit.Log[daemonevents.Event]
	// observe, when set before the daemon starts, also sees every event,
	// on the daemon's goroutine: a snapshot taken there is exact.
	observe func(daemonevents.Event)
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, iss: &fakeissuer.Issuer{Key: testkit.RSAKey()}, dir: t.TempDir()}
	h.srv = httptest.NewServer(h.iss)
	t.Cleanup(h.srv.Close)
	h.file = filepath.Join(h.dir, "token")
	h.env = map[string]string{
		"AMBIENT_CP_TOKEN_URL":        h.srv.URL + "/token",
		"AMBIENT_CP_TOKEN_PUBLIC_KEY": base64.StdEncoding.EncodeToString([]byte(testkit.PublicKeyPEM())),
		"SESSION_ID":                  sessionID,
		"TOKEND_TOKEN_FILE":           h.file,
		"TOKEND_HEALTH_ADDR":          "127.0.0.1:0",
		"LOG_LEVEL":                   "debug",
	}
	return h
}

// run runs tokend in-process exactly as main does: a key of h.env set to
// "" is a variable set but empty (TOKEND_HEALTH_ADDR= disables the health
// server, instead of binding its default port).
func (h *harness) run(ctx context.Context, args ...string) error {
	return run(ctx, args, h.environ(), &h.stdout, &h.stderr)
}

// environ is h.env as os.Environ gives it.
func (h *harness) environ() []string {
	var kv []string
	for k, v := range h.env {
		kv = append(kv, k+"="+v)
	}
	return kv
}

// daemon runs init or run in-process as run does, but with Deps that feed
// h.events, and with tweak (when not nil) applied to the exchanger built
// from the configuration. Errors carry the exit status as run's do.
func (h *harness) daemon(ctx context.Context, cmd string, tweak func(exchange.Exchanger) error) error {
	o, err := load(cmd, nil, h.environ(), &h.stderr)
	if err != nil {
		return err
	}
	cfg := &o.Config
	log := newLogger(o.logFormat, o.logLevel, &h.stderr)
	d := daemonevents.Observe(daemon.Deps{Logger: log}, func(e daemonevents.Event) {
		if h.observe != nil {
			h.observe(e) // first: a test woken by the event sees its effect
		}
		h.events.Add(e)
	})
	if tweak != nil {
		if err := tweak(cfg.Exchanger); err != nil {
			return err
		}
	}
	if cmd == "init" {
		err = daemon.Init(ctx, cfg, d)
	} else {
		err = daemon.Run(ctx, cfg, d)
	}
	if err != nil {
		log.Error(cmd+" failed", "error", err.Error())
		return &exitError{code: 1, err: err}
	}
	return nil
}

// running is `tokend run` in-process, started by startRun.
type running struct {
	h      *harness
	done   chan error
	cancel context.CancelFunc
	// events reads h.events in order; it fails the test if run returns.
	events *testkit.Cursor[daemonevents.Event]
	// addr is the health server's address ("" when disabled).
	addr string
}

// startRun starts `tokend run` in-process through daemon (tweak as there)
// and waits until its health server listens. The test must call stop.
func (h *harness) startRun(tweak func(exchange.Exchanger) error) *running {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	r := &running{h: h, done: make(chan error, 1), cancel: cancel, events: h.events.Cursor()}
	r.events.Stop = r.done
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		r.done <- h.daemon(ctx, "run", tweak)
	}()
	// A test that fails early still ends run before its directory goes.
	h.t.Cleanup(func() {
		cancel()
		testkit.Await(h.t, "run to return", finished)
	})
	if h.env["TOKEND_HEALTH_ADDR"] != "" {
		e := r.next("the health server to listen", is(daemonevents.HealthListening))
		r.addr = e.Addr.String()
	}
	return r
}

// next waits for the next event that ok accepts; see testkit.Cursor.Next.
func (r *running) next(what string, ok func(daemonevents.Event) bool) daemonevents.Event {
	r.h.t.Helper()
	e, _ := r.events.Next(r.h.t, what, ok)
	return e
}

// stop cancels run and fails the test unless it returns nil.
func (r *running) stop() {
	r.h.t.Helper()
	r.cancel()
	if err := testkit.Await(r.h.t, "run to return", r.done); err != nil {
		r.h.t.Fatalf("run returned %v after cancel, want nil\n%s", err, r.h.stderr.String())
	}
}

// is accepts the events of one kind.
func is(k daemonevents.EventKind) func(daemonevents.Event) bool {
	return func(e daemonevents.Event) bool { return e.Kind == k }
}

// storedNew accepts a TokenStored event of a token new to the file.
func storedNew(e daemonevents.Event) bool { return e.Kind == daemonevents.TokenStored && e.Changed }

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
	secrets := append([]string{sessionID, h.env["AMBIENT_CP_TOKEN_PUBLIC_KEY"][:40]}, tokens...)
	for _, line := range strings.Split(testkit.PublicKeyPEM(), "\n")[1:3] {
		secrets = append(secrets, line)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			h.t.Fatalf("output leaks a secret (%d bytes long)", len(s))
		}
	}
}

func exitOf(err error) int { return exitCode(err, &bytes.Buffer{}) }

// validJWT reports whether tok is a JWT whose signature the fake control
// plane's key verifies: any torn or mixed write would fail.
func validJWT(tok string) bool {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(tok[:i]))
	return rsa.VerifyPKCS1v15(&testkit.RSAKey().PublicKey, crypto.SHA256, sum[:], sig) == nil
}

// healthAddrRE finds the health server's address in a text or JSON log.
var healthAddrRE = regexp.MustCompile(`health server listening.*addr"?[=:]"?([0-9.:\[\]]+)`)

// healthAddrIn waits until out (a process's log) names the health
// server's address, and returns it.
func healthAddrIn(t *testing.T, out *testkit.Buffer, done <-chan error) string {
	t.Helper()
	log := out.WaitFor(t, "the health server's address", done, healthAddrRE.MatchString)
	return healthAddrRE.FindStringSubmatch(log)[1]
}

// after returns the part of out written after mark bytes, for waits on
// events that happen after a point in the test.
func after(mark int, want string) func(string) bool {
	return func(out string) bool { return strings.Contains(out[min(mark, len(out)):], want) }
}

// get fetches a health path and returns the status and body.
func get(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustGet fetches a health path and fails the test unless it answers want.
func mustGet(t *testing.T, addr, path string, want int) string {
	t.Helper()
	code, body := get(addr, path)
	if code != want {
		t.Fatalf("%s answered %d, want %d: %s", path, code, want, body)
	}
	return body
}

func fakeJWT(exp time.Time) string { return testkit.JWTExpiring(exp) }

var _ = fmt.Sprint
