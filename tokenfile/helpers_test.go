package tokenfile

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

// deadline bounds every wait in these tests. Nothing sleeps: tests wait on
// channels, and fail if this passes first; it is no claim about speed.
const deadline = testkit.Patience

// harness runs a Watcher for one test and records what it does.
type harness struct {
	t       *testing.T
	w       *Watcher
	changes chan string           // every token passed to the callback, in order
	reloads chan Snapshot         // the result of every reload
	armed   chan chan<- time.Time // settle timers, when the test drives them
	logs    *testkit.Buffer
}

type harnessOpt func(*harness, *hooks)

// manualSettle makes the test fire the settle timers through h.armed.
func manualSettle(h *harness, k *hooks) {
	k.after = func(time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		h.armed <- ch
		return ch
	}
}

// newHarness creates a Watcher for path with a recording callback and a
// logger whose output must never contain a token.
func newHarness(t *testing.T, path string, ho ...harnessOpt) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		changes: make(chan string, 4096),
		reloads: make(chan Snapshot, 4096),
		armed:   make(chan chan<- time.Time, 64),
		logs:    &testkit.Buffer{},
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := New(path, WithLogger(log), WithOnChange(func(tok string) { h.changes <- tok }))
	if err != nil {
		t.Fatal(err)
	}
	w.hooks.reloaded = func(s Snapshot) {
		select {
		case h.reloads <- s:
		default:
			panic("tokenfile test: reload channel full")
		}
	}
	for _, o := range ho {
		o(h, &w.hooks)
	}
	h.w = w
	return h
}

// start runs the Watcher until the test ends, and checks then that Run
// returned nil and that no token reached the log.
func (h *harness) start(tokens ...string) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run returned %v", err)
		}
		h.noTokensLogged(tokens...)
		if h.t.Failed() {
			h.t.Log(h.logs.String())
		}
	})
}

func (h *harness) noTokensLogged(tokens ...string) {
	out := h.logs.String()
	for _, tok := range tokens {
		if strings.Contains(out, tok) {
			h.t.Errorf("a token (fingerprint %s) appears in the log", secret.Fingerprint(tok))
		}
	}
}

// next returns the next token passed to the callback.
func (h *harness) next() string {
	h.t.Helper()
	select {
	case tok := <-h.changes:
		return tok
	case <-time.After(deadline):
		h.t.Fatalf("no token change within %v; state %v", deadline, h.w.Current())
		return ""
	}
}

// expect fails unless the next change is want.
func (h *harness) expect(want string) {
	h.t.Helper()
	if got := h.next(); got != want {
		h.t.Fatalf("change to %s, want %s", secret.Fingerprint(got), secret.Fingerprint(want))
	}
}

// noChange fails if a change is waiting to be received.
func (h *harness) noChange() {
	h.t.Helper()
	select {
	case tok := <-h.changes:
		h.t.Fatalf("unexpected change to %s", secret.Fingerprint(tok))
	default:
	}
}

// waitFor waits until a reload leaves the Watcher in a state that
// satisfies ok, firing settle timers as they are armed (if the test drives
// them).
func (h *harness) waitFor(what string, ok func(Snapshot) bool) Snapshot {
	h.t.Helper()
	timeout := time.After(deadline)
	for {
		if s := h.w.Current(); ok(s) {
			return s
		}
		select {
		case <-h.reloads:
		case ch := <-h.armed:
			ch <- time.Now()
		case <-timeout:
			h.t.Fatalf("never %s; state %v", what, h.w.Current())
		}
	}
}

// drainReloads forgets the reloads reported so far.
func (h *harness) drainReloads() {
	for {
		select {
		case <-h.reloads:
		default:
			return
		}
	}
}

// writeRename replaces the file at path the way tokend does: a complete
// temporary file in the same directory, renamed over the target.
func writeRename(t testing.TB, path, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// writeInPlace writes the file the way a naive writer does: truncate, then
// write.
func writeInPlace(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// kubeletWrite publishes content the way the kubelet's AtomicWriter
// updates a Secret volume: a new timestamped directory, a "..data_tmp"
// symlink to it renamed over "..data", the old directory removed. The
// first call also creates the "token" symlink through "..data".
func kubeletWrite(t testing.TB, dir, content string, seq int) {
	t.Helper()
	ts := fmt.Sprintf("..2026_11_28_21_07_%02d.%09d", seq%60, seq)
	must(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, ts, "token"), []byte(content), 0o644))
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	must(t, os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	if old == "" {
		must(t, os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")))
	} else {
		must(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
