package tokenfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestInPlaceWriteSettles drives the settle timer by hand to show that a
// truncate-and-write in place is read only when the file holds still: an
// empty file keeps the last good token, and a token written in several
// pieces is delivered whole.
func TestInPlaceWriteSettles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "old-token")
	h := newHarness(t, path, manualSettle)
	h.start("old-token", "new-token-part1-part2")
	h.expect("old-token")

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	defer f.Close()
	h.waitFor("kept the old token when the file was emptied", func(s Snapshot) bool {
		return s.Token == "old-token" && errors.Is(s.Err, ErrEmpty)
	})
	for _, part := range []string{"new-token", "-part1", "-part2"} {
		_, err := f.WriteString(part)
		must(t, err)
	}
	h.waitFor("read the whole new token", func(s Snapshot) bool {
		return s.Token == "new-token-part1-part2" && s.Err == nil
	})
	h.expect("new-token-part1-part2")
	h.noChange()
}

// TestPollingFallback runs without any file events: the poll alone must
// find each change, and the watch is retried on each tick until it works.
func TestPollingFallback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "poll-1")
	tick := make(chan time.Time)
	var attempts atomic.Int32
	h := newHarness(t, path, func(_ *harness, k *hooks) {
		k.tick = tick
		k.newNotify = func() (*fsnotify.Watcher, error) {
			if attempts.Add(1) <= 2 {
				return nil, errors.New("inotify: too many instances")
			}
			return fsnotify.NewWatcher()
		}
	})
	h.start("poll-1", "poll-2", "poll-3")
	h.expect("poll-1")

	writeRename(t, path, "poll-2")
	tick <- time.Now() // polls; the second attempt to watch fails
	h.expect("poll-2")
	h.drainReloads()
	tick <- time.Now() // the third attempt succeeds: events from now on
	receive(t, h.reloads)
	if attempts.Load() != 3 {
		t.Fatalf("%d attempts to watch, want 3", attempts.Load())
	}
	writeRename(t, path, "poll-3")
	h.expect("poll-3")
}

// TestWatchRebuilt closes the fsnotify watcher under the Watcher's feet:
// it is rebuilt at once the first time, at the next tick the second.
func TestWatchRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "rb-1")
	tick := make(chan time.Time)
	// Each watcher is handed over once the rebuild has installed its
	// watches, not when it is created: the test closes it and inspects
	// its watch list, and must not race the rebuild that fills it.
	built := make(chan *fsnotify.Watcher, 8)
	h := newHarness(t, path, func(_ *harness, k *hooks) {
		k.tick = tick
		k.watching = func(n *fsnotify.Watcher) { built <- n }
	})
	h.start("rb-1", "rb-2", "rb-3")
	h.expect("rb-1")
	first := <-built

	must(t, first.Close())
	second := receive(t, built)
	writeRename(t, path, "rb-2")
	h.expect("rb-2")

	must(t, second.Close())
	h.waitFor("noticed the second failure", func(Snapshot) bool {
		return strings.Contains(h.logs.String(), "file watch failed again")
	})
	if len(built) != 0 {
		t.Fatal("rebuilt twice within one poll interval")
	}
	writeRename(t, path, "rb-3")
	tick <- time.Now()
	h.expect("rb-3")
	third := receive(t, built)
	if len(third.WatchList()) == 0 {
		t.Fatal("the rebuilt watcher watches nothing")
	}
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("nothing received within %v", deadline)
		var zero T
		return zero
	}
}

// TestReadersDuringRotation has many goroutines read the token while the
// file rotates: each read must return one of the tokens written, whole.
func TestReadersDuringRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	const n = 300
	valid := make(map[string]bool, n)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("rotating-token-%04d", i)
		valid[tokens[i]] = true
	}
	writeRename(t, path, tokens[0])
	h := newHarness(t, path)
	h.start(tokens...)
	h.expect(tokens[0])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !valid[h.w.Token()] {
					bad.Add(1)
				}
				if s := h.w.Current(); !valid[s.Token] || s.LoadedAt.IsZero() {
					bad.Add(1)
				}
				reads.Add(1)
			}
		})
	}
	for i, tok := range tokens[1:] {
		if i%2 == 0 {
			writeRename(t, path, tok)
		} else {
			writeInPlace(t, path, tok)
		}
	}
	for h.next() != tokens[n-1] {
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads returned something other than a whole token", bad.Load(), reads.Load())
	}
}
