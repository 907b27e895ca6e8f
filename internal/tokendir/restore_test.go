package tokendir

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

// noWatcher is a NewWatcher that always fails, as when inotify instances
// are exhausted: Run then relies on its periodic check alone, and runs in
// a synctest bubble (a real watcher blocks in the kernel, outside it).
func noWatcher() (*fsnotify.Watcher, error) { return nil, syscall.EMFILE }

// restoreWorld is a Dir without a watch on a token file and a JSON
// document, holding one stored token, in a synctest bubble.
type restoreWorld struct {
	*world
	start    time.Time
	logs     testkit.Buffer
	mu       sync.Mutex  // guards restores
	restores []restoreAt // Restored's calls
}

type restoreAt struct {
	at  time.Duration // since start, on the bubble's clock
	err error
}

// newRestoreWorld stores a token and starts Run until the test ends. Call
// it inside the bubble.
func newRestoreWorld(t *testing.T) *restoreWorld {
	w := &restoreWorld{world: newWorld(t), start: time.Now()}
	w.d = New(Options{TokenFile: w.token, Mode: mode, Outputs: []Output{JSON(w.doc)},
		Logger: slog.New(slog.NewTextHandler(&w.logs, nil)), Now: func() time.Time { return w.now }})
	w.d.newWatcher = noWatcher
	w.d.Restored = func(fp string, err error) {
		if fp != secret.Fingerprint("tok-secret-1") {
			t.Errorf("Restored with fingerprint %q, want the stored token's", fp)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.restores = append(w.restores, restoreAt{time.Since(w.start), err})
	}
	store(t, w.d, tok("tok-secret-1", time.Time{}), true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- w.d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// until sleeps on the bubble's clock until d after start, lets Run finish
// what is due by then, and returns Restored's calls so far.
func (w *restoreWorld) until(d time.Duration) []restoreAt {
	time.Sleep(d - time.Since(w.start))
	synctest.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.restores)
}

// TestRunRestoresALostTokenFile: without a watch, Run checks the outputs
// every minute; a token file removed at 12 s is written again at the
// check at 60 s, byte for byte and logged with its reason, and one
// replaced at 70 s at the check at 120 s; an intact directory is left as
// it is.
func TestRunRestoresALostTokenFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRestoreWorld(t)
		doc := read(t, w.doc)
		w.until(12 * time.Second)
		must(t, os.Remove(w.token))
		if got := w.until(59 * time.Second); len(got) != 0 {
			t.Fatalf("restored before the check: %v", got)
		}
		if got := w.until(61 * time.Second); len(got) != 1 || got[0] != (restoreAt{60 * time.Second, nil}) {
			t.Fatalf("restores %v, want one at 60s", got)
		}
		if read(t, w.token) != "tok-secret-1" || read(t, w.doc) != doc {
			t.Fatal("not restored as it was written")
		}
		if l := w.logs.String(); !strings.Contains(l, "token file lost, wrote the stored token again") || !strings.Contains(l, "token file unreadable") {
			t.Errorf("the loss was not logged with its reason:\n%s", l)
		}
		w.until(70 * time.Second)
		must(t, os.WriteFile(w.token, []byte("other"), mode))
		if got := w.until(10 * time.Minute); len(got) != 2 || got[1] != (restoreAt{120 * time.Second, nil}) {
			t.Fatalf("restores %v, want the second at 120s and none after", got)
		}
		if read(t, w.token) != "tok-secret-1" || w.d.Verified() != nil {
			t.Fatalf("the replaced token file was not restored: verdict %v", w.d.Verified())
		}
		if strings.Contains(w.logs.String(), "tok-secret") {
			t.Error("a log line holds the token")
		}
	})
}

// TestRunRetriesAFailedRestore: a lost token file that cannot be written
// again (its directory is gone) is tried again by the Dir itself, after 1,
// 2, 4 and 8 s (an exchange would not help), readiness failing meanwhile
// with the write's error; once the directory is back, the next try brings
// the file back and readiness with it.
func TestRunRetriesAFailedRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRestoreWorld(t)
		must(t, os.Rename(w.dir, w.dir+".gone"))
		w.until(60 * time.Second)
		if err := w.d.Verified(); err == nil || !strings.Contains(err.Error(), "restoring the lost JSON file") || !strings.Contains(err.Error(), "no such file or directory") {
			t.Fatalf("Verified while the directory is gone = %v, want the failed write", err)
		}
		w.until(70 * time.Second)
		must(t, os.Mkdir(w.dir, 0o755))
		got := w.until(80 * time.Second)
		var at []time.Duration
		for i, r := range got {
			at = append(at, r.at)
			if last := i == len(got)-1; (r.err == nil) != last {
				t.Errorf("restore %d at %v: err %v", i, r.at, r.err)
			}
		}
		want := []time.Duration{60, 61, 63, 67, 75}
		if len(at) != len(want) {
			t.Fatalf("restores at %v, want at %v s", at, want)
		}
		for i := range want {
			if at[i] != want[i]*time.Second {
				t.Fatalf("restores at %v, want at %v s", at, want)
			}
		}
		if read(t, w.token) != "tok-secret-1" || w.d.Verified() != nil {
			t.Fatalf("not restored after the directory came back: verdict %v", w.d.Verified())
		}
		if !strings.Contains(w.logs.String(), "token file lost and could not be written again, retrying") {
			t.Errorf("the failed restore was not logged:\n%s", w.logs.String())
		}
	})
}

// TestRunRestoresOnlyAfterACompleteStore: after a Store that failed for one
// output, Run writes back nothing (the refresher stores that token again
// itself), so that no output is put back to bytes older than the others.
func TestRunRestoresOnlyAfterACompleteStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newRestoreWorld(t)
		must(t, os.Remove(w.doc))
		must(t, os.Mkdir(w.doc, 0o755)) // a directory, which is never replaced
		if _, err := w.d.Store(tok("tok-secret-2", time.Time{})); err == nil {
			t.Fatal("Store over a directory succeeded")
		}
		must(t, os.Remove(w.token))
		if got := w.until(5 * time.Minute); len(got) != 0 {
			t.Fatalf("restored after an incomplete store: %v", got)
		}
		if _, err := os.Stat(w.token); err == nil {
			t.Fatal("the token file came back")
		}
	})
}
