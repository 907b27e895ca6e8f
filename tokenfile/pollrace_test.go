package tokenfile

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/secret"
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

// TestTransportRereadDuringInPlaceWrite has the file rewritten in place,
// in two halves, when the server starts refusing the old token: the
// Transport's re-read after the 401 must wait for the whole token, never
// publish or send the half.
func TestTransportRereadDuringInPlaceWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "tok-A")
	full := "tok-B-written-in-two-halves"
	armed := make(chan chan<- time.Time, 8)
	w, err := New(path)
	must(t, err)
	w.hooks.after = func(time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		armed <- ch
		return ch
	}
	w.reload("")
	srv := newAPIServer(t, full)
	half, rest, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { done <- writeInTwo(path, full, half, rest) }()
	<-half
	go func() {
		first := <-armed // the Transport waits; the writer finishes meanwhile
		close(rest)
		if err := <-done; err != nil {
			t.Error(err)
		}
		first <- time.Now()
		for ch := range armed {
			ch <- time.Now()
		}
	}()
	t.Cleanup(func() { close(armed) })
	resp, err := (&http.Client{Transport: w.Transport(nil)}).Get(srv.URL)
	must(t, err)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || w.Token() != full {
		t.Errorf("status %d, token %s; want 200 and %s", resp.StatusCode, w.Current().Fingerprint(), secret.Fingerprint(full))
	}
	auth, _ := srv.requests()
	for _, a := range auth {
		if a != "Bearer tok-A" && a != "Bearer "+full {
			t.Errorf("the server saw a token that was never whole (%s)", fingerprints([]string{a}))
		}
	}
}
