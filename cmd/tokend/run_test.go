package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

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
	// Besides the token file, only init's note for run (without the token).
	if entries, err := os.ReadDir(h.dir); err != nil || len(entries) != 2 || entries[0].Name() != ".token.tokend-init" {
		t.Errorf("token directory holds %v (%v), want the token file and init's handoff", entries, err)
	} else if b, _ := os.ReadFile(filepath.Join(h.dir, entries[0].Name())); strings.Contains(string(b), got) {
		t.Error("init's handoff holds the token")
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
		// How many attempts fit before the deadline is the refresher's
		// TestOnce's to prove; here at least one, none after.
		{name: "timeout", faults: repeat(fakeissuer.Status(500), 10), env: map[string]string{"TOKEND_INIT_TIMEOUT": "1500ms"}, code: 1, want: "no token before the deadline", requests: -1},
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
			if got := h.iss.Requests(); got != tt.requests && (tt.requests >= 0 || got < 1) {
				t.Errorf("%d requests, want %d (-1: at least one)", got, tt.requests)
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
	h.iss.Push(fakeissuer.Body(`{"token":"half`), fakeissuer.Status(502))
	r := h.startRun(nil)

	type result struct{ reads, bad int }
	stop, results := make(chan struct{}), make(chan result, 1)
	go func() {
		var res result
		defer func() { results <- res }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(h.file)
			if errors.Is(err, os.ErrNotExist) && res.reads == 0 {
				continue // before the first write
			}
			res.reads++
			if err != nil || !validJWT(string(b)) {
				res.bad++
			}
		}
	}()
	// Both faults come first: two failed attempts, then the rotations.
	for range 2 {
		r.next("a failed exchange", is(daemonevents.ExchangeFailed))
	}
	for range 8 {
		r.next("a new token", storedNew)
	}
	close(stop)
	res := testkit.Await(t, "the reader", results)
	r.stop()
	if res.bad != 0 {
		t.Fatalf("%d of %d reads saw a bad token file", res.bad, res.reads)
	}
	h.assertNoSecrets(h.token(), h.iss.Current())
	if !strings.Contains(h.stderr.String(), "status=502") {
		t.Errorf("the 502 was not logged as a retry")
	}
}

// TestRunRefreshesAheadOfShortLivedTokens: with an hour's interval, tokens
// that last 1.5 s are still replaced, one after the other, before they
// expire (the refresher's unit tests prove when).
func TestRunRefreshesAheadOfShortLivedTokens(t *testing.T) {
	h := newHarness(t)
	h.iss.Lifetime = 1500 * time.Millisecond
	h.iss.CacheFloor = -1
	h.env["TOKEND_REFRESH_INTERVAL"] = "1h"
	r := h.startRun(nil)
	for range 3 {
		r.next("a new token ahead of expiry", storedNew)
	}
	r.stop()
	if n := h.iss.Issued(); n < 3 {
		t.Fatalf("%d tokens issued, want at least 3", n)
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
		{"withdrawn", "# token withdrawn: session refused (403)\n", "holds no token: token withdrawn: session refused (403)"},
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

// TestInitThenRunIsOneExchange: a pod start, `tokend init` then `tokend
// run` on one token directory, costs the control plane one exchange: run
// adopts init's token, is ready with it, and waits for its refresh.
func TestInitThenRunIsOneExchange(t *testing.T) {
	h := newHarness(t)
	if err := h.run(t.Context(), "init"); err != nil {
		t.Fatalf("init: %v\n%s", err, h.stderr.String())
	}
	tok := h.token()
	r := h.startRun(nil)
	stored := r.next("init's token stored", is(daemonevents.TokenStored))
	r.next("the first wait", is(daemonevents.WaitStarted))
	if n := h.iss.Requests(); n != 1 {
		t.Fatalf("%d exchanges for init and run, want 1\n%s", n, h.stderr.String())
	}
	if stored.Changed || h.token() != tok {
		t.Errorf("run replaced init's token")
	}
	mustGet(t, r.addr, "/readyz", 200)
	r.stop()
	if !strings.Contains(h.stderr.String(), "adopted the token tokend init wrote") {
		t.Errorf("run did not say it adopted init's token:\n%s", h.stderr.String())
	}
	h.assertNoSecrets(tok)
}
