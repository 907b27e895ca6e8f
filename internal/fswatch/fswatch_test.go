package fswatch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestReaderNeverWaitsOnErrors replays the deadlock that hung tokend's
// token directory: a watched directory renamed away and deleted makes
// fsnotify send an error while it holds the lock Add takes. Nobody reads
// Errors here, yet the events after that error arrive and Add returns.
// On a bare fsnotify.Watcher the events never come.
func TestReaderNeverWaitsOnErrors(t *testing.T) {
	w, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	root := t.TempDir()
	dir := filepath.Join(root, "tokens")
	mustDo(t, os.Mkdir(dir, 0o755))
	mustDo(t, w.Add(dir))
	// The reader holds this event until it is read, so that the move and
	// the deletion below are queued in the kernel before it sees the move:
	// by then the kernel has dropped the watch, and fsnotify's own
	// inotify_rm_watch fails.
	mustDo(t, os.WriteFile(filepath.Join(dir, "token"), nil, 0o600))
	mustDo(t, os.Rename(dir, dir+".gone"))
	mustDo(t, os.RemoveAll(dir+".gone"))
	first := testkit.Await(t, "the create event", w.Events)
	if first.Op != fsnotify.Create {
		t.Fatalf("first event %v, want the create", first)
	}
	// An event from after the move: the reader got past its error.
	for ev := range w.Events {
		if ev.Name == dir || ev.Op.Has(fsnotify.Remove) {
			break
		}
	}
	added := make(chan error, 1)
	go func() { added <- w.Add(root) }()
	mustDo(t, testkit.Await(t, "Add to return", added))
	if err := testkit.Await(t, "the error of the move", w.Errors); err == nil {
		t.Fatal("Errors closed, want the error fsnotify sent")
	}
}

// TestCloseEndsChannels: after Close both channels are closed, so a loop
// reading them ends.
func TestCloseEndsChannels(t *testing.T) {
	w, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, w.Add(t.TempDir()))
	mustDo(t, w.Close())
	if _, ok := <-w.Errors; ok {
		t.Error("Errors still open after Close")
	}
	if _, ok := <-w.Events; ok {
		t.Error("Events still open after Close")
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
