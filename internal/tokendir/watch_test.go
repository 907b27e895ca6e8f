package tokendir

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/test/testkit"
)

// watched runs d until the test ends, with ticks (nil: never) in place of
// its minute check while unwatched, and returns the channel of its
// Restored calls.
func watched(t *testing.T, d *Dir, ticks chan time.Time) <-chan error {
	restored := make(chan error, 16)
	d.Restored = func(_ string, err error) { restored <- err }
	d.tick = ticks
	if ticks == nil {
		d.tick = make(chan time.Time)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return restored
}

// TestWatchRestoresEachOutput: with the watch installed, Run takes no
// periodic check (a tick waits from the start, untaken), and removing the
// token file, renaming a file over it, and removing the JSON document in
// another directory each bring the output back at once; a file beside
// them changing triggers no check.
func TestWatchRestoresEachOutput(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	token, doc := filepath.Join(dir, "token"), filepath.Join(other, "token.json")
	var logs testkit.Buffer
	d := New(Options{TokenFile: token, Mode: mode, Outputs: []Output{JSON(doc)}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := d.Store(tok("tok-1", time.Time{})); err != nil {
		t.Fatal(err)
	}
	if err := d.Watch(); err != nil {
		t.Skipf("no filesystem watch here: %v", err)
	}
	ticks := make(chan time.Time, 1)
	ticks <- time.Now()
	restored := watched(t, d, ticks)

	// The token file changes through a hard link in an unwatched
	// directory, which makes no event; then a file beside it changes.
	// Events are handled in order, so had that change caused a check, the
	// first restore would be the token file's, not the JSON document's.
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Link(token, link))
	must(t, os.WriteFile(link, []byte("other"), mode))
	must(t, os.WriteFile(filepath.Join(dir, "app.pid"), []byte("1"), 0o600))
	must(t, os.Remove(doc))
	awaitRestore(t, "the JSON document's removal", restored)
	out := logs.WaitForText(t, "wrote the stored token again", nil)
	if first, _, _ := strings.Cut(out, "\n"); !strings.Contains(first, "JSON file unreadable") {
		t.Fatalf("the first restore was not the JSON document's: %s", first)
	}
	for _, s := range []struct {
		what   string
		damage func()
	}{
		{"the token file's removal", func() { must(t, os.Remove(token)) }},
		{"a rename over the token file", func() {
			must(t, os.WriteFile(token+".new", []byte("b"), 0o600))
			must(t, os.Rename(token+".new", token))
		}},
	} {
		s.damage()
		awaitRestore(t, s.what, restored)
		if read(t, token) != "tok-1" {
			t.Fatalf("after %s the token file holds something else", s.what)
		}
	}
	if len(ticks) != 1 {
		t.Error("Run took the periodic check while the watch was installed")
	}
}

// TestWatchRetriedAtEachCheck: when the watch cannot be installed at start
// (inotify instances exhausted), each periodic check tries again, quietly
// while it fails; once installed, a removed token file is restored at
// once, and the periodic check stops (a tick waits, untaken).
func TestWatchRetriedAtEachCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	var calls atomic.Int32
	newWatcher := func() (*fsnotify.Watcher, error) {
		if calls.Add(1) <= 2 {
			return nil, syscall.EMFILE
		}
		return fsnotify.NewWatcher()
	}
	var logs testkit.Buffer
	d := New(Options{TokenFile: path, Mode: mode,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	d.newWatcher = newWatcher
	if err := d.Watch(); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Watch = %v, want the constructor's EMFILE", err)
	}
	if _, err := d.Store(tok("opaque-token", time.Time{})); err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time, 1)
	restored := watched(t, d, ticks)
	// Each check restores the removed file: its Restored call says the
	// check is over.
	must(t, os.Remove(path))
	ticks <- time.Now()
	awaitRestore(t, "the first check", restored)
	if calls.Load() != 2 || strings.Contains(logs.String(), "level=INFO") {
		t.Fatalf("after one check: %d constructor calls (want 2), log %q", calls.Load(), logs.String())
	}
	must(t, os.Remove(path))
	ticks <- time.Now()
	awaitRestore(t, "the second check", restored)
	if calls.Load() != 3 || !strings.Contains(logs.String(), "watching the token directory again") {
		t.Fatalf("after two checks: %d constructor calls (want 3), log %q", calls.Load(), logs.String())
	}
	// From now on a tick waits, ready, through each of Run's waits for an
	// event: Run must not take it.
	ticks <- time.Now()
	for _, what := range []string{"the removal, without a check", "a second removal"} {
		must(t, os.Remove(path))
		awaitRestore(t, what, restored)
	}
	if len(ticks) != 1 {
		t.Error("Run took the periodic check while the watch was installed")
	}
	if calls.Load() != 3 {
		t.Fatalf("later: %d constructor calls (want 3)", calls.Load())
	}
}

// awaitRestore waits for a successful restore.
func awaitRestore(t *testing.T, what string, restored <-chan error) {
	t.Helper()
	if err := testkit.Await(t, "a restore after "+what, restored); err != nil {
		t.Fatalf("restore after %s: %v", what, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
