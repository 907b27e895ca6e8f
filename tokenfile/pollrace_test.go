package tokenfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestPollDuringInPlaceWrite has a writer truncate the file and write the
// first 10 bytes of a token, then stop until the test lets it write the
// rest. A poll falls in the pause: it must not publish the half-written
// token, whether the write's events are seen or lost.
func TestPollDuringInPlaceWrite(t *testing.T) {
	for _, events := range []bool{false, true} {
		t.Run(fmt.Sprintf("events=%v", events), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeRename(t, path, "old-token")
			tick := make(chan time.Time)
			h := newHarness(t, path, manualSettle, func(_ *harness, k *hooks) {
				k.tick = tick
				if !events {
					k.newNotify = func() (*fsnotify.Watcher, error) { return nil, errors.New("no inotify here") }
				}
			})
			h.start("old-token")
			h.expect("old-token")
			for i := range 5 {
				full := fmt.Sprintf("rotated-%d-token-complete", i)
				half := make(chan struct{})
				rest := make(chan struct{})
				done := make(chan error, 1)
				go func() { done <- writeInTwo(path, full, half, rest) }()
				<-half
				tick <- time.Now()
				tick <- time.Now() // received only once the first poll is over
				close(rest)
				must(t, <-done)
				h.waitFor("read the whole token", func(s Snapshot) bool { return s.Token == full })
				h.expect(full)
			}
			h.noChange()
		})
	}
}

// writeInTwo truncates the file at path and writes the first 10 bytes of
// content, closes half, waits for rest, then writes the remainder: a naive
// writer that pauses half way.
func writeInTwo(path, content string, half, rest chan struct{}) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		close(half)
		return err
	}
	defer f.Close()
	_, err = f.WriteString(content[:10])
	close(half)
	<-rest
	if err != nil {
		return err
	}
	_, err = f.WriteString(content[10:])
	return err
}
