package main

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// diskFault is something that happens to the token's volume under a
// running daemon, and its cure.
type diskFault struct {
	name string
	// inject makes the fault; heal removes it.
	inject, heal func(t *testing.T)
	// want is in the logged error and the /readyz answer.
	want string
	// keepsOld: the old token must stay in the file throughout.
	keepsOld bool
}

// newRotatingHarness is a harness whose issuer mints a new token on every
// request. The issuer is configured before it serves: a child process's
// request is no synchronisation the race detector can see.
func newRotatingHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.srv.Close()
	h.iss.CacheFloor = -1
	h.srv = httptest.NewServer(h.iss)
	t.Cleanup(h.srv.Close)
	h.env["AMBIENT_CP_TOKEN_URL"] = h.srv.URL + "/token"
	return h
}

// diskWorld is what a disk-fault test sees of one running daemon.
type diskWorld struct {
	path string // the token file, as the test reaches it
	addr string // the health server
	// stop fails a wait when the daemon has ended.
	stop <-chan error
	// logs is the daemon's log; its lines are the events waited on.
	logs *testkit.Buffer
}

// runDiskFault drives one fault: with tokend rotating, make the fault and
// expect readiness to go false with a clear error while the old token
// stays (where the fault allows), run to stay up, and, once the fault is
// cured, the daemon to write a new token and be ready again by itself.
// Each step waits for the log line that follows the state it checks: the
// refresher updates the probes first, then logs.
func runDiskFault(t *testing.T, w diskWorld, f diskFault) {
	t.Helper()
	read := func() string { b, _ := os.ReadFile(w.path); return string(b) }
	w.logs.WaitForText(t, "token updated", w.stop)
	mustGet(t, w.addr, "/readyz", 200)
	old := read()
	mark := w.logs.Len()
	f.inject(t)
	w.logs.WaitFor(t, "a logged write failure with "+f.want, w.stop, after(mark, f.want))
	if f.keepsOld && read() != old {
		t.Fatalf("the token file changed under the fault")
	}
	body := mustGet(t, w.addr, "/readyz", 503)
	if !strings.Contains(body, "writing the token file failed") || !strings.Contains(body, f.want) {
		t.Errorf("/readyz does not say the write failed with %q: %s", f.want, body)
	}
	metrics := mustGet(t, w.addr, "/metrics", 200)
	if strings.Contains(metrics, `tokend_file_writes_total{result="failed"} 0`) {
		t.Errorf("the failed write is not counted")
	}
	if old != "" && strings.Contains(body+metrics, old) {
		t.Fatalf("a probe or the metrics show the token")
	}
	mustGet(t, w.addr, "/livez", 200) // a disk fault is not a reason to restart
	mark = w.logs.Len()
	f.heal(t)
	// A new token (the issuer mints one per request) written and logged.
	w.logs.WaitFor(t, "a new token after the cure", w.stop, after(mark, "token updated"))
	mustGet(t, w.addr, "/readyz", 200)
	if got := read(); got == old || !validJWT(got) {
		t.Fatalf("after recovery the token file does not hold a new issued token")
	}
}

// TestRunDiskFaults covers the faults that need no privilege: the token's
// directory removed, and the token path replaced by a directory or by a
// symlink (which must never be written through).
func TestRunDiskFaults(t *testing.T) {
	var wg sync.WaitGroup
	for _, name := range []string{"directory removed", "target replaced by a directory", "target replaced by a symlink"} {
		wg.Go(func() { t.Run(name, func(t *testing.T) { inProcessDiskFault(t, name) }) })
	}
	wg.Wait()
}

func inProcessDiskFault(t *testing.T, name string) {
	h := newRotatingHarness(t)
	dir := filepath.Join(h.dir, "tokens")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.file = filepath.Join(dir, "token")
	h.env["TOKEND_TOKEN_FILE"] = h.file
	h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // the refresher's 500 ms floor
	h.env["TOKEND_MAX_BACKOFF"] = "150ms"
	decoy := filepath.Join(h.dir, "decoy")
	if err := os.WriteFile(decoy, []byte("decoy"), 0o600); err != nil {
		t.Fatal(err)
	}
	faults := map[string]diskFault{
		"directory removed": {
			// Renamed away first: the directory disappears atomically even
			// while tokend writes into it (RemoveAll alone can race with a
			// restore and fail with "directory not empty").
			inject: func(t *testing.T) { must(t, os.Rename(dir, dir+".gone")); must(t, os.RemoveAll(dir+".gone")) },
			heal:   func(t *testing.T) { must(t, os.Mkdir(dir, 0o755)) },
			want:   "no such file or directory",
		},
		"target replaced by a directory": {
			// tokend writes a removed token file again at once, so the
			// directory may lose the race with it: try until it wins.
			inject: func(t *testing.T) { must(t, replaceWithDir(h.file)) },
			heal:   func(t *testing.T) { must(t, os.Remove(h.file)) },
			want:   "is a directory",
		},
		"target replaced by a symlink": {
			// Renamed over the file, so that there is no moment without
			// a target for tokend to fill.
			inject: func(t *testing.T) {
				must(t, os.Symlink(decoy, h.file+".link"))
				must(t, os.Rename(h.file+".link", h.file))
			},
			heal: func(t *testing.T) { must(t, os.Remove(h.file)) },
			want: "is a symlink",
		},
	}
	r := h.startRun(nil)
	runDiskFault(t, diskWorld{path: h.file, addr: r.addr, stop: r.done, logs: &h.stderr}, faults[name])
	r.stop()
	if b, _ := os.ReadFile(decoy); string(b) != "decoy" {
		t.Errorf("the symlink's target was written through")
	}
	h.assertNoSecrets(h.token())
}

// replaceWithDir removes the file at path and makes a directory there,
// retrying while a writer keeps putting the file back.
func replaceWithDir(path string) error {
	var err error
	for range 100 {
		if err = os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err = os.Mkdir(path, 0o755); !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunRestoresARemovedTokenFile: a consumer deletes the token file
// between two refreshes of a long interval. run sees the event, says so, and
// writes the token it holds again at once: no exchange is needed, so this
// works while the issuer is down too. (That the directory watch, not the
// one-minute fallback check, drives it is proven by tokendir's
// TestWatchRestoresEachOutput.)
func TestRunRestoresARemovedTokenFile(t *testing.T) {
	t.Parallel() // mostly waiting; overlaps the other slow test
	h := newHarness(t)
	h.env["TOKEND_REFRESH_INTERVAL"] = "1h"
	r := h.startRun(nil)
	r.next("the first token", storedNew)
	first := h.token()
	requests := h.iss.Requests()
	for range 3 {
		must(t, os.Remove(h.file))
		e, skipped := r.events.Next(t, "the token written again", is(daemonevents.TokenStored))
		for _, s := range skipped {
			if s.Kind != daemonevents.WaitStarted {
				t.Errorf("%v before the restore, want only waits", s)
			}
		}
		if got := h.token(); got != first || !validJWT(got) || e.Fingerprint != secret.Fingerprint(first) {
			t.Fatalf("the token file came back with another content")
		}
	}
	if got := h.iss.Requests(); got != requests {
		t.Errorf("%d exchanges to restore the file, want none", got-requests)
	}
	mustGet(t, r.addr, "/readyz", 200)
	r.stop()
	if !strings.Contains(h.stderr.String(), "token file lost, wrote the stored token again") {
		t.Errorf("the loss was not logged")
	}
	h.assertNoSecrets(first)
}
