package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/refresher"
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
	h      *harness
	path   string // the token file, as the test reaches it
	addr   string // the health server
	exited func() error
	logs   func() string
}

// runDiskFault drives one fault: with tokend rotating, make the fault and
// expect readiness to go false with a clear error while the old token
// stays (where the fault allows), run to stay up, and, once the fault is
// cured, the daemon to write a new token and be ready again by itself.
func runDiskFault(t *testing.T, w diskWorld, f diskFault) {
	t.Helper()
	read := func() string { b, _ := os.ReadFile(w.path); return string(b) }
	check := func(deadline time.Time) {
		t.Helper()
		if err := w.exited(); err != nil {
			t.Fatalf("run exited: %v\n%s", err, w.logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out\n%s", w.logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline := time.Now().Add(20 * time.Second)
	for code, _ := get(w.addr, "/readyz"); code != 200 || read() == ""; code, _ = get(w.addr, "/readyz") {
		check(deadline)
	}
	f.inject(t)
	old := read()
	for {
		code, body := get(w.addr, "/readyz")
		if f.keepsOld && read() != old {
			t.Fatalf("the token file changed under the fault")
		}
		// The refresher logs the failure just after readiness learns of it.
		if code == 503 && strings.Contains(body, "writing the token file failed") && strings.Contains(body, f.want) && strings.Contains(w.logs(), f.want) {
			break
		}
		check(deadline)
	}
	_, metrics := get(w.addr, "/metrics")
	if strings.Contains(metrics, `tokend_file_writes_total{result="failed"} 0`) {
		t.Errorf("the failed write is not counted")
	}
	if _, ready := get(w.addr, "/readyz"); old != "" && strings.Contains(ready+metrics, old) {
		t.Fatalf("a probe or the metrics show the token")
	}
	if code, _ := get(w.addr, "/livez"); code != 200 {
		t.Errorf("/livez %d: a disk fault is not a reason to restart", code)
	}
	f.heal(t)
	for code, _ := get(w.addr, "/readyz"); code != 200 || read() == old; code, _ = get(w.addr, "/readyz") {
		check(deadline)
	}
	if got := read(); !validJWT(got) {
		t.Fatalf("after recovery the token file does not hold an issued token")
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
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()
	var exitErr error
	exited := func() error {
		select {
		case err := <-done:
			exitErr = fmt.Errorf("returned %v", err)
		default:
		}
		return exitErr
	}
	runDiskFault(t, diskWorld{h: h, path: h.file, addr: h.healthAddr(done), exited: exited, logs: h.stderr.String}, faults[name])
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
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
// works while the issuer is down too.
func TestRunRestoresARemovedTokenFile(t *testing.T) {
	t.Parallel() // mostly waiting; overlaps the other slow test
	h := newHarness(t)
	h.env["TOKEND_REFRESH_INTERVAL"] = "1h"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	addr := h.healthAddr(done)
	first := h.waitFile(done, func(s string) bool { return s != "" })
	requests := h.iss.Requests()
	for range 3 {
		must(t, os.Remove(h.file))
		removed := time.Now()
		if got := h.waitFile(done, func(s string) bool { return s != "" }); got != first || !validJWT(got) {
			t.Fatalf("the token file came back with another content")
		}
		// Event-driven: far sooner than the one-minute fallback check.
		if took := time.Since(removed); took > refresher.DefaultVerifyEvery/2 {
			t.Errorf("restored after %v, want well within the %v fallback period", took, refresher.DefaultVerifyEvery)
		}
	}
	if got := h.iss.Requests(); got != requests {
		t.Errorf("%d exchanges to restore the file, want none", got-requests)
	}
	waitUntil(t, 10*time.Second, func() bool { code, _ := get(addr, "/readyz"); return code == 200 })
	if !strings.Contains(h.stderr.String(), "token file lost, wrote the stored token again") {
		t.Errorf("the loss was not logged")
	}
	h.assertNoSecrets(first)
}
