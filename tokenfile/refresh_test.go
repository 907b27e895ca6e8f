package tokenfile

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/secret"
)

// refreshWorld is a token file, a tokend stand-in serving the refresh
// socket with a real refreshsock server, and an API that accepts only the
// token named by accept.
type refreshWorld struct {
	file, socket string
	refreshes    atomic.Int32
	apiCalls     atomic.Int32
	accept       atomic.Value // string
	api          *httptest.Server
}

func newRefreshWorld(t *testing.T, onRefresh func(w *refreshWorld) bool) *refreshWorld {
	t.Helper()
	w := &refreshWorld{file: filepath.Join(t.TempDir(), "token")}
	w.socket = refreshsock.DefaultPath(w.file)
	writeFile(t, w.file, "tok-old")
	w.accept.Store("tok-new")
	ln, err := refreshsock.Listen(w.socket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		refreshsock.Serve(ctx, ln, func(context.Context) (bool, string, error) {
			w.refreshes.Add(1)
			changed := onRefresh(w)
			data, _ := os.ReadFile(w.file)
			return changed, secret.Fingerprint(string(data)), nil
		}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	w.api = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.apiCalls.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+w.accept.Load().(string) {
			rw.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(w.api.Close)
	return w
}

func writeFile(t *testing.T, path, tok string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (w *refreshWorld) get(t *testing.T, opts ...Option) int {
	t.Helper()
	wt, err := New(w.file, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: wt.Transport(nil)}
	resp, err := c.Get(w.api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTransportAsksTokendAfterA401(t *testing.T) {
	w := newRefreshWorld(t, func(w *refreshWorld) bool { writeFile(t, w.file, "tok-new"); return true })
	if code := w.get(t, WithRefreshSocket(w.socket, 0)); code != http.StatusOK {
		t.Errorf("status %d, want 200 after the refresh", code)
	}
	if r, a := w.refreshes.Load(), w.apiCalls.Load(); r != 1 || a != 2 {
		t.Errorf("%d refreshes and %d API calls, want 1 and 2", r, a)
	}
}

func TestTransportKeepsThe401WhenTheTokenDidNotChange(t *testing.T) {
	w := newRefreshWorld(t, func(*refreshWorld) bool { return false })
	if code := w.get(t, WithRefreshSocket(w.socket, 0)); code != http.StatusUnauthorized {
		t.Errorf("status %d, want the 401", code)
	}
	if r, a := w.refreshes.Load(), w.apiCalls.Load(); r != 1 || a != 1 {
		t.Errorf("%d refreshes and %d API calls, want 1 and 1 (no pointless retry)", r, a)
	}
}

func TestTransportWithoutTheOptionOrTokend(t *testing.T) {
	w := newRefreshWorld(t, func(w *refreshWorld) bool { writeFile(t, w.file, "tok-new"); return true })
	if code := w.get(t); code != http.StatusUnauthorized || w.refreshes.Load() != 0 {
		t.Errorf("without the option: status %d, %d refreshes; want 401 and none", code, w.refreshes.Load())
	}
	missing := filepath.Join(t.TempDir(), ".tokend.sock")
	if code := w.get(t, WithRefreshSocket(missing, 0)); code != http.StatusUnauthorized {
		t.Errorf("no tokend on the socket: status %d, want the 401", code)
	}
}
