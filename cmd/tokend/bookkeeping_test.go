package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/test/fakeissuer"
)

// countRequests serves the harness's issuer behind a handler that reports
// each request on the returned channel, and points the harness at it.
func countRequests(h *harness) <-chan struct{} {
	reqs := make(chan struct{}, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- struct{}{}
		h.iss.ServeHTTP(w, r)
	}))
	h.t.Cleanup(srv.Close)
	h.env["AMBIENT_CP_TOKEN_URL"] = srv.URL + "/token"
	return reqs
}

// TestUnchangedTokenWritesNothing: while the issuer hands out the token
// already on disk, tokend writes nothing at all to the shared directory, so
// its watchers see no event; and tokend's own records cannot fail a token
// write (a directory where the old status record lived is ignored).
func TestUnchangedTokenWritesNothing(t *testing.T) {
	h := newHarness(t)
	if err := os.Mkdir(filepath.Join(h.dir, ".token.tokend-status"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.run(t.Context(), "init"); err != nil {
		t.Fatalf("init with a directory at the old status path: %v", err)
	}
	reqs := countRequests(h)
	h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // the cached token comes back each time
	h.env["TOKEND_HEALTH_ADDR"] = ""
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(h.dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()

	// mark creates a file of the test's own and returns the events that
	// came before its own event: inotify keeps order.
	mark := func(name string) []fsnotify.Event {
		t.Helper()
		if err := os.WriteFile(filepath.Join(h.dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var before []fsnotify.Event
		for {
			select {
			case ev := <-w.Events:
				if filepath.Base(ev.Name) == name {
					return before
				}
				before = append(before, ev)
			case err := <-done:
				t.Fatalf("run returned: %v", err)
			}
		}
	}
	next := func() {
		t.Helper()
		select {
		case <-reqs:
		case err := <-done:
			t.Fatalf("run returned: %v\n%s", err, h.stderr.String())
		}
	}
	next()
	next() // the first exchange of run is stored: the second has begun
	mark("marker-1")
	for range 4 {
		next()
	}
	if evs := mark("marker-2"); len(evs) != 0 {
		t.Errorf("three unchanged exchanges caused %d events in the shared directory, want none: %v", len(evs), evs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOutOfRangeExpiryKeepsAGoodToken: an issuer's expiry past the year
// 9999 is treated as unknown: init succeeds with the token on disk.
func TestOutOfRangeExpiryKeepsAGoodToken(t *testing.T) {
	for name, body := range map[string]string{
		"expires_at": `{"token":"opaque-token-1","expires_at":999999999999}`,
		"jwt exp":    `{"token":"` + fakeJWTExp("999999999999") + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.iss.Push(fakeissuer.Body(body))
			if err := h.run(t.Context(), "init"); err != nil {
				t.Fatalf("init: %v\n%s", err, h.stderr.String())
			}
			if h.token() == "" || !strings.Contains(h.stderr.String(), "out of range") {
				t.Errorf("token not written, or the ignored expiry not logged:\n%s", h.stderr.String())
			}
		})
	}
}

// TestCheckNeverBlocks: a FIFO where the token file belongs is refused at
// once instead of hanging check, and --max-age without a running daemon
// fails with the fix.
func TestCheckNeverBlocks(t *testing.T) {
	h := newHarness(t)
	if err := syscall.Mkfifo(h.file, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := h.run(t.Context(), "check"); exitOf(err) != 1 {
		t.Fatalf("check on a FIFO: %v, want exit 1", err)
	}
	os.Remove(h.file)
	if err := h.run(t.Context(), "init"); err != nil {
		t.Fatal(err)
	}
	h.env["TOKEND_HEALTH_ADDR"] = ""
	err := h.run(t.Context(), "check", "--max-age=1h")
	if exitOf(err) != 1 || !strings.Contains(err.Error(), "TOKEND_HEALTH_ADDR") {
		t.Fatalf("check --max-age without a daemon: %v, want exit 1 naming TOKEND_HEALTH_ADDR", err)
	}
}

// TestCheckAsksTheRunningDaemon: check --max-age passes against a running
// daemon that exchanged recently, and learns an opaque token's expiry from
// it.
func TestCheckAsksTheRunningDaemon(t *testing.T) {
	h := newHarness(t)
	h.iss.Push(fakeissuer.Body(fmt.Sprintf(`{"token":"opaque-token-2","expires_at":%d}`, time.Now().Add(time.Hour).Unix())))
	run := h.startRun(nil)
	run.next("the first token stored", storedNew)
	h.env["TOKEND_HEALTH_ADDR"] = run.addr
	h.stdout.Reset()
	if err := h.run(t.Context(), "check", "--max-age=1h"); err != nil {
		t.Fatalf("check --max-age against a running daemon: %v", err)
	}
	if out := h.stdout.String(); !strings.Contains(out, "expires in") {
		t.Errorf("check did not learn the opaque token's expiry: %q", out)
	}
	run.stop()
}

// fakeJWTExp is an unsigned JWT whose exp claim is the literal exp.
func fakeJWTExp(exp string) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(`{"alg":"none"}`)) + "." + e.EncodeToString([]byte(`{"exp":`+exp+`}`)) + ".sig"
}
