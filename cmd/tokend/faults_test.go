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

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
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
	// refused: a definitive refusal, which withdraws the token held.
	refused bool
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
		{name: "401", fault: fakeissuer.Status(401), want: "401 Unauthorized: wrong public key", refused: true},
		{name: "403", fault: fakeissuer.Status(403), want: "403 Forbidden: session id rejected", refused: true},
	}
}

// slow reports whether a fault needs a short per-request timeout to be
// seen failing (it would otherwise take exchange.RequestTimeout).
func (f issuerFault) slow() bool {
	return f.name == "hang" || f.name == "slow body past the deadline"
}

// testRequestTimeout replaces exchange.RequestTimeout for the slow
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

// start runs cmd in-process; slow faults get the short per-request timeout
// (shortTimeout) for the requests that short admits, through daemon.Deps,
// which run cannot set.
func (h *faultHarness) start(ctx context.Context, cmd string, f issuerFault, short func() bool) error {
	if !f.slow() {
		return h.daemon(ctx, cmd, nil)
	}
	return h.daemon(ctx, cmd, shortTimeout(short))
}

// shortTimeout gives the exchange testRequestTimeout for each request
// that short admits when it is sent. A fault that hangs needs a deadline
// to fail at all, while an answer after the fault must not be cut off by
// that deadline on a loaded machine: the exchanger's own timeout
// (RequestTimeout) bounds those.
func shortTimeout(short func() bool) func(exchange.Exchanger) error {
	return func(ex exchange.Exchanger) error {
		es, ok := ex.(*exchange.EncryptedSession)
		if !ok {
			return fmt.Errorf("exchanger is %T, not *exchange.EncryptedSession", ex)
		}
		c := *es.Client
		c.Transport = faultDeadline{base: c.Transport, short: short}
		es.Client = &c
		return nil
	}
}

// always and firstOnly are shortTimeout's admissions: every request (an
// issuer that fails them all), or the first one (a fault pushed once).
func always() bool { return true }

func firstOnly() func() bool {
	var n atomic.Int64
	return func() bool { return n.Add(1) == 1 }
}

// faultDeadline bounds a request admitted by short, body included, by
// testRequestTimeout.
type faultDeadline struct {
	base  http.RoundTripper
	short func() bool
}

func (d faultDeadline) RoundTrip(req *http.Request) (*http.Response, error) {
	base := d.base
	if base == nil {
		base = http.DefaultTransport
	}
	if !d.short() {
		return base.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), testRequestTimeout)
	resp, err := base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose ends a request's deadline when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	defer b.cancel()
	return b.ReadCloser.Close()
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
		err := h.start(t.Context(), "init", f, firstOnly())
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
		// The delay asked for reached the refresher, whose unit tests prove
		// that it waits at least that long.
		var failed []daemonevents.Event
		for _, e := range h.events.All() {
			if e.Kind == daemonevents.ExchangeFailed {
				failed = append(failed, e)
			}
		}
		if len(failed) != 1 || !matches(t, f.want, failed[0].Err.Error()) {
			t.Fatalf("failed exchanges %v, want one matching %q", failed, f.want)
		}
		if after, _ := exchange.RetryAfter(failed[0].Err); after < f.after {
			t.Errorf("the failure asks for a delay of %v, want at least the Retry-After of %v", after, f.after)
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
		// Long enough that the first answer arrives before the deadline
		// however loaded the machine; a Retry-After far beyond it.
		h.env["TOKEND_INIT_TIMEOUT"] = "3s"
		switch f.name {
		case "429 Retry-After seconds":
			f.fault = fakeissuer.Status(429, "Retry-After", "60")
		case "503 Retry-After date":
			f.fault = retryAfterDate(503, time.Minute)
		}
		h.out.Start(f.fault)
		err := h.start(t.Context(), "init", f, always)
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
// wait before each new attempt, never exit, and recover with its first
// attempt after the issuer comes back. How long it waits (the backoff, the
// Retry-After, the per-request timeout) is proven by the refresher's and
// the exchange's unit tests under synctest; this test asserts what happens
// and in which order.
func TestRunIssuerFaults(t *testing.T) {
	eachFault(t, func(t *testing.T, f issuerFault) {
		h := newFaultHarness(t)
		f = h.fault(f.name)
		h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // 500 ms, the refresher's floor
		h.env["TOKEND_MAX_BACKOFF"] = "150ms"
		tweak := func(exchange.Exchanger) error { return nil }
		var outage atomic.Bool // the short timeout holds while the issuer fails
		if f.slow() {
			tweak = shortTimeout(outage.Load)
		}
		// The requests the issuer had seen when each token was stored.
		type store struct {
			fingerprint string
			hits        []fakeissuer.Hit
		}
		var stores testkit.Log[store]
		h.observe = func(e daemonevents.Event) {
			if e.Kind == daemonevents.TokenStored {
				stores.Add(store{e.Fingerprint, h.out.Hits()})
			}
		}
		r := h.startRun(tweak)
		r.next("the first token", storedNew)
		first := h.token()

		// The issuer goes down: the token stored before stays, and ready.
		// A definitive refusal withdraws it instead, at once.
		outage.Store(true)
		h.out.Start(f.fault)
		held := h.outage(r, f)
		heldTok := h.token()
		switch {
		case f.refused:
			if _, err := tokenbytes.FromFile([]byte(heldTok)); !errors.Is(err, tokenbytes.ErrWithdrawn) || !matches(t, f.want, err.Error()) {
				t.Fatalf("token file after a refusal: %v, want the withdrawal naming %q", err, f.want)
			}
			if body := mustGet(t, r.addr, "/readyz", 503); !strings.HasPrefix(body, "token withdrawn: ") || !matches(t, f.want, body) {
				t.Errorf("/readyz after a refusal says %q", body)
			}
			if n := strings.Count(h.stderr.String(), "ERR token withdrawn"); n != 1 {
				t.Errorf("%d error lines for the withdrawal, want one for three refusals", n)
			}
		case !validJWT(heldTok) || secret.Fingerprint(heldTok) != held.Fingerprint:
			t.Fatalf("token file does not hold the token stored before the outage")
		default:
			mustGet(t, r.addr, "/readyz", 200)
		}
		if !matches(t, f.want, h.stderr.String()) {
			t.Errorf("the failure was not logged with %q", f.want)
		}
		if !f.retry && !f.refused && !strings.Contains(h.stderr.String(), "ERR exchange failed") {
			t.Errorf("a permanent failure was not logged at error level")
		}

		// The issuer comes back: the first attempt after that succeeds,
		// and restores everything a refusal withdrew.
		outage.Store(false)
		ended := h.out.End()
		recovered := r.next("the token after the outage", storedNew)
		if !validJWT(h.token()) {
			t.Fatalf("token file after recovery does not hold an issued token")
		}
		mustGet(t, r.addr, "/readyz", 200)
		var after []fakeissuer.Hit
		for _, st := range stores.All() {
			if st.fingerprint != recovered.Fingerprint {
				continue
			}
			for _, hit := range st.hits {
				if hit.At.After(ended) {
					after = append(after, hit)
				}
			}
		}
		if len(after) != 1 || after[0].Faulted {
			t.Fatalf("%d attempts after the issuer came back, want exactly 1 (the recovery)", len(after))
		}
		r.stop()
		h.assertClean(first, heldTok, h.token())
	})
}

// outage follows r through the failures of an outage of f that has just
// begun: three (two for a Retry-After), each with its error and followed
// by a wait, and no token written from the first on. It returns the event
// of the token stored last before the outage.
func (h *faultHarness) outage(r *running, f issuerFault) daemonevents.Event {
	h.t.Helper()
	var held daemonevents.Event
	for _, e := range h.events.All() {
		if e.Kind == daemonevents.TokenStored {
			held = e
		}
	}
	n := 3
	if f.after > 0 {
		n = 2
	}
	for i := range n {
		e, skipped := r.events.Next(h.t, "a failed exchange", is(daemonevents.ExchangeFailed))
		for _, s := range skipped {
			switch {
			case s.Kind == daemonevents.TokenStored && i == 0:
				held = s // an exchange answered before the outage began
			case s.Kind == daemonevents.TokenStored, s.Kind == daemonevents.StoreFailed:
				h.t.Fatalf("%v during the outage", s)
			}
		}
		if !matches(h.t, f.want, e.Err.Error()) {
			h.t.Errorf("failure %q does not match %q", e.Err, f.want)
		}
		r.next("the wait after a failure", is(daemonevents.WaitStarted))
	}
	return held
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
