package main

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
)

// This file drives the issue's end-to-end case with real processes: `tokend
// exec` (the token file, the JSON document, the probes, the credential
// proxy and a child restarted on each change) and tokenwatch (a consumer
// built on package tokenfile), against an issuer that refuses. For each
// refusal kind it measures, from the refusing answer, the time and the
// number of exchanges until each effect, and the same from the first
// success after it. The numbers are logged (go test -v -run
// TestProcessRevocation), never judged: what the test asserts is that every
// effect is in place while the issuer has answered the refusal alone.

// answer is one answer of the gate: when its status was written, which.
type answer struct {
	at   time.Time
	code int
}

// gate stands in front of an issuer. The first 401 or 403 that passes is
// the refusal under test; every request after it is held until open, so
// that what the test sees before then happened within that one exchange.
type gate struct {
	next http.Handler

	mu      sync.Mutex // guards the fields below
	refuse  fakeissuer.Fault
	answers []answer
	refusal int           // index in answers of the refusal; -1 before it
	release chan struct{} // closed by open
	opened  bool
}

func newGate(next http.Handler) *gate {
	return &gate{next: next, refusal: -1, release: make(chan struct{})}
}

// statusAt records the status as it is written.
type statusAt struct {
	http.ResponseWriter
	g    *gate
	done bool
}

func (s *statusAt) WriteHeader(code int) {
	if !s.done {
		s.done = true
		s.g.mu.Lock()
		if (code == http.StatusUnauthorized || code == http.StatusForbidden) && s.g.refusal < 0 {
			s.g.refusal = len(s.g.answers)
		}
		s.g.answers = append(s.g.answers, answer{time.Now(), code})
		s.g.mu.Unlock()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusAt) Write(b []byte) (int, error) {
	if !s.done {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	held := g.refusal >= 0 && !g.opened
	g.mu.Unlock()
	if held {
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
	}
	g.mu.Lock()
	refuse := g.refuse
	g.mu.Unlock()
	sw := &statusAt{ResponseWriter: w, g: g}
	if refuse != nil {
		refuse(sw, r)
		return
	}
	g.next.ServeHTTP(sw, r)
}

// setRefuse makes the gate answer every request with f (nil: the issuer
// answers again).
func (g *gate) setRefuse(f fakeissuer.Fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refuse = f
}

// open releases the held requests and holds none from then on.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		g.opened = true
		close(g.release)
	}
}

// since returns the first answer at or after index from that has code
// (0: any), and how many answers there were from index from until now.
func (g *gate) since(from int, code int) (answer, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range g.answers[from:] {
		if code == 0 || a.code == code {
			return a, len(g.answers) - from
		}
	}
	return answer{}, len(g.answers) - from
}

// count returns how many answers the gate has written.
func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.answers)
}

// refusalIndex returns the index of the refusal, or -1.
func (g *gate) refusalIndex() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refusal
}

// line is one line a process wrote, or a change of the token file, as the
// test received it.
type line struct {
	at   time.Time
	text string
}

// follow adds each line of r to log, stamped when read.
func follow(r io.Reader, log *testkit.Log[line]) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		log.Add(line{time.Now(), sc.Text()})
	}
}

var (
	watchOnce sync.Once
	watchPath string
	watchErr  error
)

// tokenwatch builds examples/tokenwatch once per test run.
func tokenwatch(t *testing.T) string {
	t.Helper()
	watchOnce.Do(func() {
		watchPath = filepath.Join(filepath.Dir(binary(t)), "tokenwatch")
		out, err := exec.Command("go", "build", "-o", watchPath, "../../examples/tokenwatch").CombinedOutput()
		if err != nil {
			watchErr = fmt.Errorf("go build tokenwatch: %v\n%s", err, out)
		}
	})
	if watchErr != nil {
		t.Fatal(watchErr)
	}
	return watchPath
}

// pod is `tokend exec` with its child, tokenwatch beside it, a watch on the
// token file, and an API server behind the proxy, all followed by the test.
type pod struct {
	t        *testing.T
	h        *harness
	tokend   *process
	logs     *testkit.Cursor[line] // tokend's JSON log
	child    *testkit.Cursor[line] // the exec child's reports
	consumer *testkit.Cursor[line] // tokenwatch's lines
	file     *testkit.Cursor[line] // the token file: "withdrawn REASON" or "token FP"
	health   string
	proxy    string
	json     string
	allLogs  func() []line
}

// check runs `tokend check` against the pod and returns its exit status and
// output.
func (p *pod) check() (int, string) {
	p.t.Helper()
	cmd := exec.Command(binary(p.t), "check")
	cmd.Env = []string{"TOKEND_TOKEN_FILE=" + p.h.file, "TOKEND_HEALTH_ADDR=" + p.health}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return 0, string(out)
}

// assertNoSecrets fails when tokend's log holds the session id, the
// capability or the key.
func (p *pod) assertNoSecrets() {
	p.t.Helper()
	for _, l := range p.allLogs() {
		for _, s := range []string{sessionID, p.h.env["AMBIENT_RUNNER_BOOTSTRAP_TOKEN"], strings.Split(testkit.PublicKeyPEM(), "\n")[1]} {
			if s != "" && strings.Contains(l.text, s) {
				p.t.Fatalf("tokend's log leaks a secret (%d bytes long)", len(s))
			}
		}
	}
}

// startPod starts the pod's processes with h's environment and waits for
// the first token to reach every consumer.
func startPod(t *testing.T, h *harness) *pod {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(api.Close)
	p := &pod{t: t, h: h, json: filepath.Join(h.dir, "token.json")}
	for k, v := range map[string]string{
		"TOKEND_HEALTH_ADDR": "127.0.0.1:0", "TOKEND_PROXY_LISTEN": "127.0.0.1:0", "AMBIENT_API_SERVER_URL": api.URL,
		"TOKEND_JSON_FILE": p.json, "TOKEND_EXEC_CHANGE_POLICY": "restart", "TOKEND_EXEC_TOKEN_ENV": "API_TOKEN",
		"TOKEND_EXEC_GRACE_PERIOD": "5s", "TOKEND_MAX_BACKOFF": "2s", "LOG_FORMAT": "json", "LOG_LEVEL": "info",
	} {
		h.env[k] = v
	}
	p.file = watchFile(t, h.dir, h.file)

	cmd := exec.Command(binary(t), "exec", "--", os.Args[0])
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), childEnv + "=1"}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs, child testkit.Log[line]
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go follow(stdout, &child)
	go follow(stderr, &logs)
	p.tokend = watchProcess(t, cmd, nil)
	p.logs, p.child = logs.Cursor(), child.Cursor()
	p.allLogs = logs.All
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range logs.All() {
				t.Log("tokend: " + l.text)
			}
		}
	})
	for p.health == "" || p.proxy == "" {
		l := p.nextLog("the listeners", func(m logLine) bool {
			return m.Msg == "health server listening" || m.Msg == "credential proxy listening"
		})
		if l.Msg == "health server listening" {
			p.health = l.Addr
		} else {
			p.proxy = l.Addr
		}
	}

	wcmd := exec.Command(tokenwatch(t), "--token-file", h.file)
	wcmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var watched testkit.Log[line]
	wout, err := wcmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := wcmd.Start(); err != nil {
		t.Fatal(err)
	}
	go follow(wout, &watched)
	watchProcess(t, wcmd, nil)
	p.consumer = watched.Cursor()

	first := p.next(p.file, "the first token in the file", prefixed("token "))
	fp := strings.TrimPrefix(first.text, "token ")
	p.next(p.consumer, "tokenwatch to see the first token", containing("token changed fingerprint="+fp))
	p.next(p.child, "the child's start with the token", prefixed("start "+fp+" "+fp))
	return p
}

// watchFile reports each change of the token file: "withdrawn REASON",
// "token FP", or "other".
func watchFile(t *testing.T, dir, path string) *testkit.Cursor[line] {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	var log testkit.Log[line]
	last := ""
	go func() {
		for ev := range w.Events {
			if ev.Name != path {
				continue
			}
			at := time.Now()
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			text := "other"
			if tok, err := tokenbytes.FromFile(b); err == nil {
				text = "token " + secret.Fingerprint(tok)
			} else if _, reason, ok := strings.Cut(err.Error(), tokenbytes.ErrWithdrawn.Error()+": "); ok {
				text = "withdrawn " + reason
			}
			if text != last {
				last = text
				log.Add(line{at, text})
			}
		}
	}()
	t.Cleanup(func() { w.Close() })
	return log.Cursor()
}

// logLine is the part of tokend's JSON log lines the test reads.
type logLine struct {
	Level, Msg, Addr, Reason string
}

func (p *pod) nextLog(what string, ok func(logLine) bool) logLine {
	p.t.Helper()
	var got logLine
	p.next(p.logs, what, func(l line) bool {
		var m logLine
		if json.Unmarshal([]byte(l.text), &m) != nil || !ok(m) {
			return false
		}
		got = m
		return true
	})
	return got
}

func (p *pod) next(c *testkit.Cursor[line], what string, ok func(line) bool) line {
	p.t.Helper()
	c.Stop = p.tokend.exited
	l, _ := c.Next(p.t, what, ok)
	return l
}

func prefixed(s string) func(line) bool {
	return func(l line) bool { return strings.HasPrefix(l.text, s) }
}

func containing(s string) func(line) bool {
	return func(l line) bool { return strings.Contains(l.text, s) }
}

// restart finds the child's next start that ok accepts, and the stop
// signal that came before it.
func (p *pod) restart(what string, ok func(line) bool) (stopped, started line) {
	p.t.Helper()
	p.child.Stop = p.tokend.exited
	started, skipped := p.child.Next(p.t, what, ok)
	for _, l := range skipped {
		if l.text == "signal terminated" {
			stopped = l
		}
	}
	if stopped.at.IsZero() {
		p.t.Fatalf("%s: no stop signal before it (%v)", what, skipped)
	}
	return stopped, started
}

// effect is one measured effect.
type effect struct {
	name      string
	after     time.Duration
	exchanges int
}

// refusalKind is one way the control plane refuses, and how the pod
// recovers from it (nil: it does not, a new run gets a new credential).
type refusalKind struct {
	name string
	// setup points h at a gate in front of the issuer of the kind.
	setup func(t *testing.T, h *harness) *gate
	// refuse makes the issuer refuse from now on.
	refuse func(g *gate)
	// recover makes it issue again; nil when the pod cannot recover.
	recover func(t *testing.T, h *harness, g *gate)
	// reason is in the withdrawal's reason.
	reason string
}

// TestProcessRevocation: for each kind of definitive refusal, within the
// refusing exchange alone (the issuer holds every later request), the
// token file holds the withdrawal record, the JSON document has no token,
// /readyz fails naming the cause, the proxy answers 403 with it, the exec
// child is stopped and started again with an empty token variable, and
// tokenwatch (package tokenfile) reports the withdrawal. The first success
// after the refusal restores all of it. Times are logged.
func TestProcessRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes; not in -short")
	}
	for _, k := range refusalKinds() {
		t.Run(k.name, func(t *testing.T) {
			h := newHarness(t)
			g := k.setup(t, h)
			p := startPod(t, h)
			k.refuse(g)
			// The next exchange is due in minutes: ask for it now, as
			// SIGHUP does (a capability's end comes on its own).
			if err := p.tokend.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			var effects []effect
			at := func(name string, l time.Time) {
				t.Helper()
				ref, n := g.since(max(g.refusalIndex(), 0), 0)
				if g.refusalIndex() < 0 {
					t.Fatalf("%s before any refusal", name)
				}
				effects = append(effects, effect{name, l.Sub(ref.at), n})
			}

			withdrawn := p.next(p.file, "the withdrawal in the token file", prefixed("withdrawn "))
			if !strings.Contains(withdrawn.text, k.reason) {
				t.Errorf("withdrawal record %q lacks %q", withdrawn.text, k.reason)
			}
			at("token file", withdrawn.at)
			p.nextLog("the withdrawal's log line", func(m logLine) bool { return strings.HasPrefix(m.Msg, "token withdrawn") && m.Level == "ERROR" })
			code, body := get(p.health, "/readyz")
			at("readiness", time.Now())
			if code != 503 || !strings.HasPrefix(body, "token withdrawn: ") || !strings.Contains(body, k.reason) {
				t.Errorf("/readyz = %d %q, want 503 naming the withdrawal", code, body)
			}
			code, body = get(p.proxy, "/api")
			at("proxy", time.Now())
			if code != 403 || !strings.Contains(body, k.reason) {
				t.Errorf("proxy = %d %q, want 403 naming the refusal", code, body)
			}
			if code, out := p.check(); code != 1 || !strings.Contains(out, "token withdrawn") || !strings.Contains(out, k.reason) {
				t.Errorf("check = %d %q, want 1 naming the withdrawal", code, out)
			}
			var doc map[string]any
			if b, err := os.ReadFile(p.json); err != nil || json.Unmarshal(b, &doc) != nil || doc["token"] != nil || doc["withdrawn"] == nil {
				t.Errorf("JSON document %s (%v): want no token and the reason", b, err)
			}
			stopped, restarted := p.restart("the child started without a token", prefixed("start "+secret.Fingerprint("")+" "))
			at("exec child stopped", stopped.at)
			at("exec child restarted", restarted.at)
			if f := strings.Fields(restarted.text); f[3] != "false" {
				t.Errorf("child restarted with %q, want no credential inherited", restarted.text)
			}
			consumed := p.next(p.consumer, "tokenwatch to see the withdrawal", containing("token withdrawn previous="))
			at("tokenfile consumer", consumed.at)
			if !strings.Contains(consumed.text, k.reason) {
				t.Errorf("tokenwatch printed %q, want the withdrawal's reason", consumed.text)
			}
			for _, e := range effects {
				if e.exchanges != 1 {
					t.Errorf("%s: after %d exchanges, want the refusing one alone", e.name, e.exchanges)
				}
				when := fmt.Sprintf("%8.1f ms", float64(e.after.Microseconds())/1e3)
				if e.after < 0 {
					when = "already, for the rotation before"
				}
				t.Logf("refusal  %-22s %-22s %s  %d exchange(s)", k.name, e.name, when, e.exchanges)
			}
			if k.recover == nil {
				g.open()
				return
			}

			// Recovery: the session is back (or the key file follows the
			// control plane); tokend, still asking, gets a token again.
			effects = effects[:0]
			from := g.count()
			k.recover(t, h, g)
			g.open()
			back := p.next(p.file, "a token in the file again", prefixed("token "))
			fp := strings.TrimPrefix(back.text, "token ")
			ok, _ := g.since(from, http.StatusOK)
			restoredAt := func(name string, l time.Time) {
				_, n := g.since(from, 0)
				effects = append(effects, effect{name, l.Sub(ok.at), n})
			}
			restoredAt("token file", back.at)
			p.nextLog("the restore's log line", func(m logLine) bool { return strings.HasPrefix(m.Msg, "token restored") })
			code, body = get(p.health, "/readyz")
			restoredAt("readiness", time.Now())
			if code != 200 {
				t.Errorf("/readyz after recovery = %d %q", code, body)
			}
			code, body = get(p.proxy, "/api")
			restoredAt("proxy", time.Now())
			if code != 200 || body != "ok" {
				t.Errorf("proxy after recovery = %d %q", code, body)
			}
			if code, out := p.check(); code != 0 {
				t.Errorf("check after recovery = %d %q", code, out)
			}
			if b, err := os.ReadFile(p.json); err != nil || !strings.Contains(string(b), `"fingerprint":"`+fp+`"`) {
				t.Errorf("JSON document after recovery %s (%v)", b, err)
			}
			_, restarted = p.restart("the child started with the new token", prefixed("start "+fp+" "+fp))
			restoredAt("exec child restarted", restarted.at)
			consumed = p.next(p.consumer, "tokenwatch to see the new token", containing("token changed fingerprint="))
			restoredAt("tokenfile consumer", consumed.at)
			if !strings.Contains(consumed.text, "token changed fingerprint="+fp+" previous=none") {
				t.Errorf("tokenwatch printed %q, want the new token", consumed.text)
			}
			for _, e := range effects {
				t.Logf("recovery %-22s %-22s %8.1f ms  %d exchange(s)", k.name, e.name, float64(e.after.Microseconds())/1e3, e.exchanges)
			}
			p.assertNoSecrets()
		})
	}
}

// refusalKinds are the refusal table's rows, each served as the control
// plane serves it.
func refusalKinds() []refusalKind {
	status := func(code int, body string) func(g *gate) {
		return func(g *gate) {
			g.setRefuse(func(w http.ResponseWriter, r *http.Request) { http.Error(w, body, code) })
		}
	}
	reinstate := func(t *testing.T, h *harness, g *gate) { g.setRefuse(nil) }
	return []refusalKind{
		{name: "bearer 403 revoked", setup: bearerGate(0), refuse: status(403, "runner access revoked"), recover: reinstate,
			reason: "403 Forbidden: runner access revoked"},
		{name: "bearer 401", setup: bearerGate(0), refuse: status(401, "unauthorized"), recover: reinstate,
			reason: "401 Unauthorized: credential rejected: AMBIENT_RUNNER_BOOTSTRAP_TOKEN"},
		{name: "capability expired", setup: bearerGate(8 * time.Second), refuse: func(*gate) {},
			reason: "bearer credential has expired"},
		{name: "session 403", setup: sessionGate(false), refuse: status(403, "forbidden"), recover: reinstate,
			reason: "403 Forbidden: session id rejected"},
		{name: "session 401, key file", setup: sessionGate(true), refuse: rotateKey, recover: followKey,
			reason: "401 Unauthorized: wrong public key: the key in TOKEND_PUBLIC_KEY_FILE"},
	}
}

// bearerGate serves the successor's endpoint over TLS with a capability
// that expires after life (two days when zero), given to tokend as the
// successor gives it: AMBIENT_RUNNER_BOOTSTRAP_TOKEN and
// AMBIENT_CP_CA_CERT_FILE.
func bearerGate(life time.Duration) func(t *testing.T, h *harness) *gate {
	return func(t *testing.T, h *harness) *gate {
		if life == 0 {
			life = 48 * time.Hour
		}
		capability := testkit.Capability(time.Now().Add(life))
		g := newGate(&fakeissuer.BearerIssuer{Capability: capability})
		srv := httptest.NewTLSServer(g)
		t.Cleanup(srv.Close)
		t.Cleanup(g.open)
		ca := filepath.Join(t.TempDir(), "runner-ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		delete(h.env, "SESSION_ID")
		delete(h.env, "AMBIENT_CP_TOKEN_PUBLIC_KEY")
		h.env["TOKEND_AUTH"] = "bearer"
		h.env["AMBIENT_CP_TOKEN_URL"] = srv.URL + "/token"
		h.env["AMBIENT_RUNNER_BOOTSTRAP_TOKEN"] = capability
		h.env["AMBIENT_CP_CA_CERT_FILE"] = ca
		return g
	}
}

// swapped serves the encrypted-session issuer of the current key.
type swapped struct {
	mu  sync.Mutex
	iss *fakeissuer.Issuer
}

func (s *swapped) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	iss := s.iss
	s.mu.Unlock()
	iss.ServeHTTP(w, r)
}

var sessionIssuers sync.Map // *gate → *swapped

// sessionGate serves the deployed exchange, its key given by variable, or
// by a file (keyFile).
func sessionGate(keyFile bool) func(t *testing.T, h *harness) *gate {
	return func(t *testing.T, h *harness) *gate {
		sw := &swapped{iss: &fakeissuer.Issuer{Key: testkit.RSAKey(), CacheFloor: -1}}
		g := newGate(sw)
		sessionIssuers.Store(g, sw)
		srv := httptest.NewServer(g)
		t.Cleanup(srv.Close)
		t.Cleanup(g.open)
		h.env["AMBIENT_CP_TOKEN_URL"] = srv.URL + "/token"
		if keyFile {
			path := filepath.Join(t.TempDir(), "cp.pub")
			if err := os.WriteFile(path, []byte(testkit.PublicKeyPEM()), 0o644); err != nil {
				t.Fatal(err)
			}
			delete(h.env, "AMBIENT_CP_TOKEN_PUBLIC_KEY")
			h.env["TOKEND_PUBLIC_KEY_FILE"] = path
		}
		return g
	}
}

// rotateKey: the control plane's key changes, and the key file does not
// follow yet.
func rotateKey(g *gate) {
	v, _ := sessionIssuers.Load(g)
	sw := v.(*swapped)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.iss = &fakeissuer.Issuer{Key: testkit.OtherRSAKey(), CacheFloor: -1}
}

// followKey: the key file follows the control plane's new key; tokend
// reads it at its next exchange, without a restart.
func followKey(t *testing.T, h *harness, g *gate) {
	if err := os.WriteFile(h.env["TOKEND_PUBLIC_KEY_FILE"], []byte(testkit.PublicPEM(testkit.OtherRSAKey())), 0o644); err != nil {
		t.Fatal(err)
	}
}
