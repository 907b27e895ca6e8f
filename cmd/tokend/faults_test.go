package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/config"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/fakeissuer"
)

// Bad token values the faults hand out. They must never reach the token
// file or the output.
const (
	badSpaced  = "s3cret-spaced token-value"
	badControl = "s3cret-control\u0007token"
	badCRLF    = "s3cret-crlf\r\nX-Evil: 1"
)

// issuerFault is one way the control plane can misbehave, and what tokend
// must make of it.
type issuerFault struct {
	name  string
	fault fakeissuer.Fault
	// retry: init retries (true) or fails fast (false).
	retry bool
	// want matches the error (init) and the logged failure (run).
	want string
	// after is the delay the fault asks for with Retry-After: the least
	// gap before the next attempt.
	after time.Duration
}

// issuerFaults lists the faults of the issue. redirectTo is where the
// redirect points; it must never be requested.
func issuerFaults(redirectTo string) []issuerFault {
	return []issuerFault{
		{name: "500", fault: fakeissuer.Status(500), retry: true, want: "500 Internal Server Error: the control plane could not mint a token"},
		{name: "502", fault: fakeissuer.Status(502), retry: true, want: "502 Bad Gateway: the control plane is unavailable"},
		{name: "503", fault: fakeissuer.Status(503), retry: true, want: "503 Service Unavailable: the control plane is unavailable"},
		{name: "429", fault: fakeissuer.Status(429), retry: true, want: "429 Too Many Requests: rate limited"},
		{name: "429 Retry-After seconds", fault: fakeissuer.Status(429, "Retry-After", "1"), retry: true, want: "429 Too Many Requests", after: time.Second},
		{name: "503 Retry-After date", fault: retryAfterDate(503, 2*time.Second), retry: true, want: "503 Service Unavailable", after: 900 * time.Millisecond},
		{name: "reset mid-body", fault: fakeissuer.ResetMidBody(), retry: true, want: "reading response body|connection reset|EOF"},
		{name: "slow body past the deadline", fault: fakeissuer.SlowBody(`{"token":"`+fakeJWT(time.Now().Add(time.Hour))+`"}`, 8, 200*time.Millisecond), retry: true, want: "deadline exceeded|Client.Timeout"},
		{name: "hang", fault: fakeissuer.Hang(nil), retry: true, want: "deadline exceeded|Client.Timeout"},
		{name: "non-JSON", fault: fakeissuer.Body("<html>gateway error</html>"), retry: true, want: "not a JSON object"},
		{name: "no token field", fault: fakeissuer.Body(`{"access_token":"s3cret-elsewhere"}`), retry: true, want: "no token field"},
		{name: "empty token", fault: fakeissuer.Body(`{"token":""}`), retry: true, want: "empty token"},
		{name: "token with whitespace", fault: fakeissuer.Body(`{"token":"s3cret-spaced token-value"}`), retry: true, want: "whitespace, control or non-ASCII byte at offset 1[34]"},
		{name: "token with control character", fault: fakeissuer.Body(`{"token":"s3cret-control\u0007token"}`), retry: true, want: "whitespace, control or non-ASCII byte at offset 1[34]"},
		{name: "token with CRLF", fault: fakeissuer.Body(`{"token":"s3cret-crlf\r\nX-Evil: 1"}`), retry: true, want: "offset 11"},
		{name: "oversized body", fault: fakeissuer.Oversized(1 << 20), retry: true, want: "body exceeds 65536 bytes"},
		{name: "expired on arrival", fault: fakeissuer.Body(`{"token":"` + fakeJWT(time.Now().Add(-time.Minute)) + `"}`), retry: true, want: "issued token is already expired"},
		{name: "redirect", fault: fakeissuer.Redirect(redirectTo), want: "302 Found: redirect refused"},
		{name: "401", fault: fakeissuer.Status(401), want: "401 Unauthorized: wrong public key"},
		{name: "403", fault: fakeissuer.Status(403), want: "403 Forbidden: session id rejected"},
	}
}

// slow reports whether a fault needs a short per-request timeout to be
// seen failing (it would otherwise take exchange.SessionRequestTimeout).
func (f issuerFault) slow() bool {
	return f.name == "hang" || f.name == "slow body past the deadline"
}

// testRequestTimeout replaces exchange.SessionRequestTimeout for the slow
// faults.
const testRequestTimeout = 400 * time.Millisecond

// fault returns the named fault, its redirect pointing at h's target.
func (h *faultHarness) fault(name string) issuerFault {
	for _, f := range issuerFaults(h.target) {
		if f.name == name {
			return f
		}
	}
	h.t.Fatalf("no fault %q", name)
	return issuerFault{}
}

func retryAfterDate(code int, d time.Duration) fakeissuer.Fault {
	return func(w http.ResponseWriter, r *http.Request) {
		fakeissuer.Status(code, "Retry-After", time.Now().Add(d).UTC().Format(http.TimeFormat))(w, r)
	}
}

// faultHarness is a harness whose issuer sits behind an Outage, which
// records every request and can fail them all for a while.
type faultHarness struct {
	*harness
	out *fakeissuer.Outage
	// redirected counts requests to the redirect target.
	redirected atomic.Int64
	target     string
}

func newFaultHarness(t *testing.T) *faultHarness {
	h := &faultHarness{harness: newHarness(t)}
	h.srv.Close()
	h.iss.CacheFloor = -1 // a new token on every request; set before serving
	h.out = &fakeissuer.Outage{Next: h.iss}
	h.srv = httptest.NewServer(h.out)
	t.Cleanup(h.srv.Close)
	h.env["AMBIENT_CP_TOKEN_URL"] = h.srv.URL + "/token"
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.redirected.Add(1)
		fakeissuer.Body(`{"token":"s3cret-from-the-redirect"}`)(w, r)
	}))
	t.Cleanup(elsewhere.Close)
	h.target = elsewhere.URL + "/token"
	return h
}

// start runs cmd in-process as run does; slow faults get the short
// per-request timeout through daemon.Deps, which run cannot set.
func (h *faultHarness) start(ctx context.Context, cmd string, f issuerFault) error {
	if !f.slow() {
		return h.run(ctx, cmd)
	}
	getenv := func(k string) string { return h.env[k] }
	cfg, err := config.Parse(cmd, nil, getenv, &h.stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, &h.stderr)
	ex, err := daemon.NewExchanger(cfg)
	if err != nil {
		return err
	}
	es, ok := ex.(*exchange.EncryptedSession)
	if !ok {
		return fmt.Errorf("exchanger is %T, not *exchange.EncryptedSession", ex)
	}
	es.Timeout = testRequestTimeout
	d := daemon.Deps{Logger: log, Exchanger: es}
	if cmd == config.CmdInit {
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

// assertClean fails when the output leaks a secret or a bad token value, or
// when the redirect was followed.
func (h *faultHarness) assertClean(tokens ...string) {
	h.t.Helper()
	if n := h.redirected.Load(); n != 0 {
		h.t.Errorf("the redirect target was requested %d times", n)
	}
	h.assertNoSecrets(append(tokens, badSpaced, badControl, badCRLF, "s3cret-elsewhere", "s3cret-from-the-redirect", h.iss.Current())...)
}

// eachFault runs one subtest per issuer fault, all at once: they spend
// their time waiting, so -parallel (the number of CPUs) would only
// serialise them.
func eachFault(t *testing.T, test func(*testing.T, issuerFault)) {
	var wg sync.WaitGroup
	for _, f := range issuerFaults("") {
		wg.Go(func() { t.Run(f.name, func(t *testing.T) { test(t, f) }) })
	}
	wg.Wait()
}

func matches(t *testing.T, pattern, s string) bool {
	t.Helper()
	return regexp.MustCompile(pattern).MatchString(s)
}

// TestInitIssuerFaults: a fault on the first request is retried (and init
// then succeeds on the second) or fails init at once with exit status 1,
// depending on whether trying again can help. The token file holds the
// issued token or nothing.
func TestInitIssuerFaults(t *testing.T) {
	eachFault(t, func(t *testing.T, f issuerFault) {
		h := newFaultHarness(t)
		f = h.fault(f.name)
		h.env["TOKEND_MAX_BACKOFF"] = "50ms"
		h.iss.Push(f.fault)
		err := h.start(t.Context(), config.CmdInit, f)
		hits := h.out.Hits()
		if !f.retry {
			if exitOf(err) != 1 || !matches(t, f.want, err.Error()) {
				t.Fatalf("init: %v; want exit 1 with %q", err, f.want)
			}
			if len(hits) != 1 {
				t.Errorf("%d requests, want 1: a permanent failure is not retried", len(hits))
			}
			if _, err := os.Stat(h.file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("token file exists after a failed init")
			}
			h.assertClean()
			return
		}
		if err != nil {
			t.Fatalf("init: %v, want success after one retry\n%s", err, h.stderr.String())
		}
		if len(hits) != 2 {
			t.Fatalf("%d requests, want 2", len(hits))
		}
		if gap := hits[1].At.Sub(hits[0].At); gap < f.after {
			t.Errorf("retried after %v, before the Retry-After of %v", gap, f.after)
		}
		if got := h.token(); got != h.iss.Current() || !validJWT(got) {
			t.Errorf("token file does not hold the token issued on the retry")
		}
		if !strings.Contains(h.stderr.String(), "exchange failed, will retry") || !matches(t, f.want, h.stderr.String()) {
			t.Errorf("the failure was not logged with %q:\n%s", f.want, h.stderr.String())
		}
		h.assertClean(h.token())
	})
}

// TestInitIssuerDown: with the issuer failing every request, init gives up
// at its deadline (or at once when Retry-After reaches past it) with exit
// status 1, the last failure in its message, and no token file.
func TestInitIssuerDown(t *testing.T) {
	eachFault(t, func(t *testing.T, f issuerFault) {
		if !f.retry {
			return // TestInitIssuerFaults covers them: one request, then exit.
		}
		h := newFaultHarness(t)
		h.env["TOKEND_MAX_BACKOFF"] = "100ms"
		h.env["TOKEND_INIT_TIMEOUT"] = "900ms"
		h.out.Start(f.fault)
		err := h.start(t.Context(), config.CmdInit, f)
		if exitOf(err) != 1 || !strings.Contains(err.Error(), "no token before the deadline") || !matches(t, f.want, err.Error()) {
			t.Fatalf("init: %v; want exit 1, the deadline and %q", err, f.want)
		}
		if f.after > 0 && !strings.Contains(err.Error(), "next retry would be in") {
			t.Errorf("init did not give up at once when Retry-After passed its deadline: %v", err)
		}
		if _, err := os.Stat(h.file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("token file exists after a failed init")
		}
		h.assertClean()
	})
}

// TestInitSlowBodyWithinTimeout: a body that trickles in but completes
// within the per-request timeout is a success, not a fault.
func TestInitSlowBodyWithinTimeout(t *testing.T) {
	h := newFaultHarness(t)
	tok := fakeJWT(time.Now().Add(time.Hour))
	h.iss.Push(fakeissuer.SlowBody(`{"token":"`+tok+`"}`+"\n", 16, 20*time.Millisecond))
	if err := h.run(t.Context(), "init"); err != nil {
		t.Fatalf("init: %v", err)
	}
	if h.token() != tok || len(h.out.Hits()) != 1 {
		t.Fatalf("token file does not hold the slowly sent token after one request")
	}
	h.assertClean(tok)
}

// TestRunIssuerFaults: the sidecar meets an issuer that fails every request
// for a while. It must keep the last good token on disk (and stay ready),
// back off between attempts, never exit, and recover with its first attempt
// after the issuer comes back, within one backoff step.
func TestRunIssuerFaults(t *testing.T) {
	const maxBackoff = 150 * time.Millisecond
	eachFault(t, func(t *testing.T, f issuerFault) {
		h := newFaultHarness(t)
		f = h.fault(f.name)
		h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // 500 ms, the refresher's floor
		h.env["TOKEND_MAX_BACKOFF"] = maxBackoff.String()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.start(ctx, config.CmdRun, f) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run returned %v after cancel, want nil", err)
			}
		}()
		addr := h.healthAddr(done)
		first := h.waitFile(done, func(s string) bool { return s != "" })

		// The issuer goes down. From the first failed request on, the
		// file must hold one good token, unchanged.
		h.out.Start(f.fault)
		wantFailed := 3
		if f.after > 0 {
			wantFailed = 2
		}
		held := ""
		deadline := time.Now().Add(30 * time.Second)
		for n := 0; n < wantFailed; {
			// Count first, then read: once a failed request has
			// arrived, the store before it has finished.
			n = faulted(h.out.Hits())
			got := h.token()
			if !validJWT(got) {
				t.Fatalf("token file holds something the issuer did not sign")
			}
			if held == "" && n > 0 {
				held = got
			}
			if held != "" && got != held {
				t.Fatalf("token file changed during the outage")
			}
			h.alive(done, deadline)
			time.Sleep(2 * time.Millisecond)
		}
		if code, body := get(addr, "/readyz"); code != 200 {
			t.Errorf("/readyz %d during an issuer outage with a good token on disk: %s", code, body)
		}
		if !matches(t, f.want, h.stderr.String()) {
			t.Errorf("the failure was not logged with %q", f.want)
		}
		if !f.retry && !strings.Contains(h.stderr.String(), "ERR exchange failed") {
			t.Errorf("a permanent failure was not logged at error level")
		}

		// The issuer comes back: the first attempt after that succeeds.
		ended := h.out.End()
		h.waitFile(done, func(s string) bool { return s != held })
		if got := h.token(); got != h.iss.Current() || !validJWT(got) {
			t.Fatalf("token file after recovery does not hold the issued token")
		}
		hits := h.out.Hits()
		var after []fakeissuer.Hit
		var last time.Time
		for i, hit := range hits {
			if hit.At.After(ended) {
				after = append(after, hit)
				continue
			}
			if i > 0 && hit.Faulted && hits[i-1].Faulted {
				if gap := hit.At.Sub(last); gap < minGap(f, maxBackoff) {
					t.Errorf("attempts %v apart during the outage, want at least %v", gap, minGap(f, maxBackoff))
				}
			}
			last = hit.At
		}
		if len(after) != 1 || after[0].Faulted {
			t.Fatalf("%d attempts after the issuer came back, want exactly 1 (the recovery)", len(after))
		}
		step := max(f.after, maxBackoff) + 150*time.Millisecond
		if f.slow() {
			step += testRequestTimeout
		}
		if took := after[0].At.Sub(ended); took > step+2*time.Second {
			t.Errorf("recovered %v after the issuer came back, want within one backoff step (%v, plus 2s of slack for a loaded machine)", took, step)
		}
		select {
		case err := <-done:
			t.Fatalf("run exited: %v", err)
		default:
		}
		h.assertClean(first, held, h.token())
	})
}

// minGap is the least time between the arrivals of two failed attempts:
// the backoff (jitter takes at most 20% off), the Retry-After, or the
// timeout plus the backoff for faults that run into the per-request
// timeout; less 60 ms, as an attempt may reach the issuer late (dialling,
// scheduling) and the next one on time.
func minGap(f issuerFault, maxBackoff time.Duration) time.Duration {
	gap := max(f.after, maxBackoff*8/10)
	if f.slow() {
		gap += testRequestTimeout
	}
	return gap - 60*time.Millisecond
}

func faulted(hits []fakeissuer.Hit) int {
	n := 0
	for _, h := range hits {
		if h.Faulted {
			n++
		}
	}
	return n
}

var healthAddrRE = regexp.MustCompile(`health server listening.*addr=(\S+)`)

// healthAddr waits for run to log its health server's address.
func (h *harness) healthAddr(done <-chan error) string {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := healthAddrRE.FindStringSubmatch(h.stderr.String()); m != nil {
			return m[1]
		}
		h.alive(done, deadline)
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFile waits until the token file's content satisfies ok, and returns
// it.
func (h *harness) waitFile(done <-chan error, ok func(string) bool) string {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s := h.token(); ok(s) {
			return s
		}
		h.alive(done, deadline)
		time.Sleep(2 * time.Millisecond)
	}
}

// alive fails the test when run has returned or the deadline has passed.
func (h *harness) alive(done <-chan error, deadline time.Time) {
	h.t.Helper()
	select {
	case err := <-done:
		h.t.Fatalf("run returned early: %v\n%s", err, h.stderr.String())
	default:
	}
	if time.Now().After(deadline) {
		h.t.Fatalf("timed out\n%s", h.stderr.String())
	}
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
