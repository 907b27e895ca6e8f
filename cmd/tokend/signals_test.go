package main

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// observeExchanges points h at a server that forwards to h's issuer and
// reports each answered request on the returned channel.
func observeExchanges(t *testing.T, h *harness) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.iss.ServeHTTP(w, r)
		select {
		case ch <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	h.env["AMBIENT_CP_TOKEN_URL"] = srv.URL + "/token"
	return ch
}

// awaitExchange waits for the next exchange, failing if the process ends
// first.
func awaitExchange(t *testing.T, p *process, exchanges <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-exchanges:
	case <-p.exited:
		err := p.err
		t.Fatalf("%s: tokend ended (%v) before exchanging\n%s", what, err, p.stderr.String())
	case <-time.After(60 * time.Second): // bounds a hang only
		t.Fatalf("%s: no exchange\n%s", what, p.stderr.String())
	}
}

// TestProcessRunRefreshesOnSIGHUPAndSIGUSR1: SIGHUP and SIGUSR1 ask the
// running sidecar for an exchange now; neither ends it. With a 15-minute
// token and the 5-minute cadence, no exchange would happen otherwise.
func TestProcessRunRefreshesOnSIGHUPAndSIGUSR1(t *testing.T) {
	h := newHarness(t)
	exchanges := observeExchanges(t, h)
	p := start(t, h, "run")
	awaitExchange(t, p, exchanges, "start")
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGHUP} {
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		awaitExchange(t, p, exchanges, sig.String())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.stderr.String())
	}
	if n := h.iss.Requests(); n != 4 {
		t.Errorf("issuer saw %d requests, want 4 (one at start, one per signal)", n)
	}
}
