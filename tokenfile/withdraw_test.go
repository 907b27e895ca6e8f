package tokenfile

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// TestWithdrawal: a withdrawal record in the file drops the token within
// one event (Token, Current, the callbacks, the Transport, Wait), unlike a
// file that goes bad, which keeps it; the next token restores everything.
func TestWithdrawal(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "held-token")
	h := newHarness(t, path)
	h.start("held-token", "new-token")
	h.expect("held-token")
	client := &http.Client{Transport: h.w.Transport(nil)}
	get(t, client, srv.URL) // pins the origin

	writeRename(t, path, string(tokenbytes.Withdrawal("the control plane refused the credential (403)")))
	h.expect("") // the callbacks are told at once
	s := h.w.Current()
	if h.w.Token() != "" || s.HasToken() || s.Stale() || !errors.Is(s.Err, ErrWithdrawn) {
		t.Fatalf("after the withdrawal: %v, want no token and ErrWithdrawn", s)
	}
	before := sent.Load()
	if _, err := client.Get(srv.URL); !errors.Is(err, ErrWithdrawn) {
		t.Errorf("request after the withdrawal: %v, want ErrWithdrawn", err)
	}
	if sent.Load() != before {
		t.Error("a request went out after the withdrawal")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.w.Wait(ctx); !errors.Is(err, ErrWithdrawn) || !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after the withdrawal: %v, want ErrWithdrawn and Canceled", err)
	}

	waited := make(chan string, 1)
	go func() {
		tok, _ := h.w.Wait(t.Context())
		waited <- tok
	}()
	writeRename(t, path, "new-token")
	h.expect("new-token")
	if tok := <-waited; tok != "new-token" {
		t.Errorf("Wait returned a token of %d bytes, want the new one", len(tok))
	}
	get(t, client, srv.URL)
	must(t, os.Remove(path)) // a file gone bad keeps the token
	h.waitFor("missing", func(s Snapshot) bool { return errors.Is(s.Err, ErrMissing) })
	if h.w.Token() != "new-token" {
		t.Error("a missing file dropped the token")
	}
}

func get(t *testing.T, c *http.Client, url string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
