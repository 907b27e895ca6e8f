package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/secret"
)

// TestWatchRetriedAtTheMinuteCheck: when the watch cannot be installed at
// start (inotify instances exhausted), each of the refresher's minute
// checks tries again, quietly while it fails; once installed, a removed
// token file is signalled at once.
func TestWatchRetriedAtTheMinuteCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	newWatcher := func() (*fsnotify.Watcher, error) {
		if calls.Add(1) <= 2 {
			return nil, syscall.EMFILE
		}
		return fsnotify.NewWatcher()
	}
	d := newDirWatch(path, newWatcher)
	if err := d.install(); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("install = %v, want the constructor's EMFILE", err)
	}
	var logs bytes.Buffer
	var verified atomic.Int32
	r := &refresher.Refresher{
		Store:  func(exchange.Token) (bool, error) { return true, nil },
		Verify: func(exchange.Token) error { verified.Add(1); return nil },
	}
	d.attach(r, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	done := make(chan error, 1)
	go func() { done <- d.Run(t.Context()) }()

	tok := exchange.Token{Value: secret.New("opaque-token")}
	// The first minute check: still EMFILE, nothing logged at info.
	if err := r.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || logs.Len() != 0 {
		t.Fatalf("after one check: %d constructor calls (want 2), log %q", calls.Load(), logs.String())
	}
	// The second: the watch is installed, and Verify still runs.
	if err := r.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || verified.Load() != 2 {
		t.Fatalf("after two checks: %d constructor calls (want 3), %d verifications (want 2)", calls.Load(), verified.Load())
	}
	if !bytes.Contains(logs.Bytes(), []byte("watching the token directory again")) {
		t.Errorf("no log line for the installed watch: %q", logs.String())
	}
	// A further check does not make another watcher.
	if err := r.Verify(tok); err != nil || calls.Load() != 3 {
		t.Fatalf("third check: err %v, %d constructor calls (want 3)", err, calls.Load())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Recheck:
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	case <-time.After(30 * time.Second): // bounds a hang only
		t.Fatal("removing the token file was not signalled")
	}
}
