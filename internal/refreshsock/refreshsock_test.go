package refreshsock

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// serve starts Serve on a socket in a new directory with refresh; the
// returned func stops it and waits for Serve to return.
func serve(t *testing.T, refresh RefreshFunc) (string, func()) {
	t.Helper()
	path := DefaultPath(filepath.Join(t.TempDir(), "token"))
	ln, err := Listen(path, SocketMode(0o640))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, refresh, slog.New(slog.DiscardHandler)) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	return path, stop
}

func TestRequestAnswers(t *testing.T) {
	var calls atomic.Int32
	answers := []struct {
		changed bool
		fp      string
		err     error
	}{{true, "abc", nil}, {false, "abc", nil}, {false, "abc", errors.New("exchange: control plane answered 500")}, {false, "", ErrNotRunning}}
	path, stop := serve(t, func(context.Context) (bool, string, error) {
		a := answers[calls.Add(1)-1]
		return a.changed, a.fp, a.err
	})
	defer stop()
	for i, want := range []struct {
		changed bool
		errText string
	}{{true, ""}, {false, ""}, {false, "502 Bad Gateway): exchange: control plane answered 500"}, {false, "503"}} {
		resp, err := Request(t.Context(), path)
		if want.errText == "" {
			if err != nil || resp.Changed != want.changed || resp.Fingerprint != "abc" {
				t.Errorf("request %d: %+v, %v; want changed=%v fingerprint abc", i, resp, err, want.changed)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want.errText) {
			t.Errorf("request %d: error %v, want %q", i, err, want.errText)
		}
	}
}

func TestSocketModeAndRemoval(t *testing.T) {
	path, stop := serve(t, func(context.Context) (bool, string, error) { return false, "", nil })
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v, %v; want a socket with mode 0660", fi.Mode(), err)
	}
	stop()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Serve returned: %v", err)
	}
	if _, err := Request(t.Context(), path); err == nil || !strings.Contains(err.Error(), "is tokend running") {
		t.Errorf("request without a server: %v", err)
	}
}

func TestListenReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // a crashed tokend's socket: the file stays, nobody listens
	if ln, err := Listen(stale, 0o600); err != nil {
		t.Errorf("stale socket: %v", err)
	} else {
		defer ln.Close()
		if _, err := Listen(stale, 0o600); err == nil || !strings.Contains(err.Error(), "another process") {
			t.Errorf("served socket: %v", err)
		}
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file, 0o600); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("x", 120)), 0o600); err == nil || !strings.Contains(err.Error(), "--refresh-socket") {
		t.Errorf("long path: %v", err)
	}
}

func TestSocketMode(t *testing.T) {
	for in, want := range map[fs.FileMode]fs.FileMode{0o640: 0o660, 0o600: 0o600, 0o644: 0o666, 0o400: 0o600} {
		if got := SocketMode(in); got != want {
			t.Errorf("SocketMode(%o) = %o, want %o", in, got, want)
		}
	}
}
