package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ambient-code/tokend/internal/testkit"
)

// TestDirWatchSignals: removing the token file, or renaming another file
// over it, signals a recheck at once, which is what makes tokend restore a
// lost token file without waiting for its one-minute fallback check. A file
// beside it changing does not.
func TestDirWatchSignals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := newDirWatch(path)
	if err != nil {
		t.Skipf("no filesystem watch here: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := testkit.Await(t, "the watch to end", done); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Another file in the directory: no signal. A removal follows it, and
	// events arrive in order, so the first signal is the removal's.
	must(t, os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o600))
	must(t, os.Remove(path))
	testkit.Await(t, "a signal for the removal", w.ch)
	if _, err := os.Stat(path); err == nil {
		t.Fatal("signalled before the removal")
	}
	must(t, os.WriteFile(path+".new", []byte("b"), 0o600))
	must(t, os.Rename(path+".new", path))
	testkit.Await(t, "a signal for the rename into place", w.ch)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
