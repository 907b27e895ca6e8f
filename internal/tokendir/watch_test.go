package tokendir

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// await waits for a signal on ch; the timeout only bounds a hang.
func await(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("no signal for %s", what)
	}
}

// running runs d's watch until the test ends.
func running(t *testing.T, d *Dir) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestWatchSignalsEachOutput: removing the token file, renaming a file
// over it, and removing the JSON document in another directory each
// signal Attention at once; a file beside them changing does not.
func TestWatchSignalsEachOutput(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	token, doc := filepath.Join(dir, "token"), filepath.Join(other, "token.json")
	d := New(Options{TokenFile: token, Mode: mode, Outputs: []Output{JSON(doc)}})
	if _, err := d.Store(tok("tok-1", time.Time{})); err != nil {
		t.Fatal(err)
	}
	if err := d.Watch(); err != nil {
		t.Skipf("no filesystem watch here: %v", err)
	}
	running(t, d)

	// Events arrive in order, so the first signal after the unrelated
	// write is the removal's.
	must(t, os.WriteFile(filepath.Join(dir, "app.pid"), []byte("1"), 0o600))
	must(t, os.Remove(token))
	await(t, "the token file's removal", d.Attention())
	if _, err := os.Stat(token); err == nil {
		t.Fatal("signalled before the removal")
	}
	must(t, os.WriteFile(token+".new", []byte("b"), 0o600))
	must(t, os.Rename(token+".new", token))
	await(t, "a rename over the token file", d.Attention())
	must(t, os.Remove(doc))
	await(t, "the JSON document's removal", d.Attention())
}

// TestWatchRetriedAtEachVerify: when the watch cannot be installed at
// start (inotify instances exhausted), each Verify (the refresher's minute
// check) tries again, quietly while it fails; once installed, a removed
// token file is signalled at once.
func TestWatchRetriedAtEachVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	var calls atomic.Int32
	newWatcher := func() (*fsnotify.Watcher, error) {
		if calls.Add(1) <= 2 {
			return nil, syscall.EMFILE
		}
		return fsnotify.NewWatcher()
	}
	var logs bytes.Buffer
	d := New(Options{TokenFile: path, Mode: mode, NewWatcher: newWatcher,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err := d.Watch(); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Watch = %v, want the constructor's EMFILE", err)
	}
	running(t, d)
	held := tok("opaque-token", time.Time{})
	if _, err := d.Store(held); err != nil {
		t.Fatal(err)
	}
	// The first check: still EMFILE, nothing logged at info.
	if err := d.Verify(held); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || logs.Len() != 0 {
		t.Fatalf("after one check: %d constructor calls (want 2), log %q", calls.Load(), logs.String())
	}
	// The second: the watch is installed, and the verification still runs.
	must(t, os.WriteFile(path, []byte("other"), mode))
	if err := d.Verify(held); err == nil {
		t.Fatal("Verify passed a replaced token file")
	}
	if calls.Load() != 3 || !bytes.Contains(logs.Bytes(), []byte("watching the token directory again")) {
		t.Fatalf("after two checks: %d constructor calls (want 3), log %q", calls.Load(), logs.String())
	}
	// A further check does not make another watcher.
	d.Verify(held)
	if calls.Load() != 3 {
		t.Fatalf("third check: %d constructor calls (want 3)", calls.Load())
	}
	must(t, os.Remove(path))
	await(t, "the removal of the token file", d.Attention())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
