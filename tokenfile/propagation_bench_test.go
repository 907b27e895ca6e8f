package tokenfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/tokenfile"
)

// A layout is a way of publishing a new token: where the consumer's path
// points, how a new version is written, and which directory a hand-written
// fsnotify watcher would watch to see it.
type layout struct {
	name    string
	path    string // the consumer's path, relative to the root
	watch   string // the directory a bare watcher watches, relative to the root
	prepare func(b *testing.B, root, tok string, seq int) (publish func())
}

var layouts = []layout{{
	name: "rename", path: "token", watch: ".",
	prepare: func(b *testing.B, root, tok string, _ int) func() {
		mustB(b, os.WriteFile(filepath.Join(root, "token.tmp"), []byte(tok), 0o600))
		return func() { mustB(b, os.Rename(filepath.Join(root, "token.tmp"), filepath.Join(root, "token"))) }
	},
}, {
	// The kubelet's AtomicWriter: a new timestamped directory, and a
	// "..data" symlink renamed over the old one.
	name: "data-swap", path: "token", watch: ".",
	prepare: func(b *testing.B, root, tok string, seq int) func() {
		ts := fmt.Sprintf("..2026_11_29_%09d", seq)
		mustB(b, os.Mkdir(filepath.Join(root, ts), 0o755))
		mustB(b, os.WriteFile(filepath.Join(root, ts, "token"), []byte(tok), 0o644))
		mustB(b, os.Symlink(ts, filepath.Join(root, "..data_tmp")))
		if seq == 0 {
			mustB(b, os.Symlink(filepath.Join("..data", "token"), filepath.Join(root, "token")))
		}
		return func() { mustB(b, os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data"))) }
	},
}, {
	// A symlinked directory: base/current -> v<n>, a new version
	// published by renaming a new symlink over current; old ones kept.
	name: "dir-swap", path: "current/token", watch: ".",
	prepare: func(b *testing.B, root, tok string, seq int) func() {
		v := fmt.Sprintf("v%d", seq)
		mustB(b, os.Mkdir(filepath.Join(root, v), 0o755))
		mustB(b, os.WriteFile(filepath.Join(root, v, "token"), []byte(tok), 0o644))
		mustB(b, os.Symlink(v, filepath.Join(root, "current.tmp")))
		return func() { mustB(b, os.Rename(filepath.Join(root, "current.tmp"), filepath.Join(root, "current"))) }
	},
}}

// BenchmarkPropagation measures, for each layout, the time from the step
// that publishes a new token (a rename) to the moment the consumer has it:
// for tokenfile, when its change callback runs with Token already serving
// it; for the reference, a bare fsnotify watcher on the directory a
// hand-written consumer would watch, when os.ReadFile, run on each event,
// returns the new token. Both run in the same benchmark, rotation by
// rotation in turn, so they share the machine's noise; the ratios are the
// figures to compare across machines.
func BenchmarkPropagation(b *testing.B) {
	for _, l := range layouts {
		b.Run("layout="+l.name, func(b *testing.B) {
			tf := newTarget(b, l, startTokenfile)
			ref := newTarget(b, l, startBare)
			tfLat := make([]time.Duration, 0, b.N)
			refLat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				tfLat = append(tfLat, tf.rotate(b, i+1))
				refLat = append(refLat, ref.rotate(b, i+1))
			}
			b.StopTimer()
			slices.Sort(tfLat)
			slices.Sort(refLat)
			for _, p := range []int{50, 99} {
				t, r := percentile(tfLat, p), percentile(refLat, p)
				b.ReportMetric(t, fmt.Sprintf("p%d-µs", p))
				b.ReportMetric(r, fmt.Sprintf("ref-p%d-µs", p))
				b.ReportMetric(t/r, fmt.Sprintf("p%d-ratio", p))
			}
		})
	}
}

// A target is one token directory in a layout, followed by one consumer,
// which sends the token it has seen on seen, with the time it saw it.
type target struct {
	l    layout
	root string
	seen chan seenToken
}

type seenToken struct {
	tok string
	at  time.Time
}

type starter func(b *testing.B, path, watchDir string, seen chan<- seenToken)

func newTarget(b *testing.B, l layout, start starter) *target {
	t := &target{l: l, root: b.TempDir(), seen: make(chan seenToken, 64)}
	t.l.prepare(b, t.root, benchToken(0), 0)()
	start(b, filepath.Join(t.root, l.path), filepath.Join(t.root, l.watch), t.seen)
	t.await(b, benchToken(0))
	return t
}

// rotate publishes the seq-th token and returns how long the consumer
// took to have it.
func (t *target) rotate(b *testing.B, seq int) time.Duration {
	tok := benchToken(seq)
	publish := t.l.prepare(b, t.root, tok, seq)
	t0 := time.Now()
	publish()
	return t.await(b, tok).Sub(t0)
}

func (t *target) await(b *testing.B, tok string) time.Time {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-t.seen:
			if s.tok == tok {
				return s.at
			}
		case <-timeout:
			b.Fatalf("%s: the new token was not seen within 10s", t.l.name)
		}
	}
}

func benchToken(seq int) string { return fmt.Sprintf("bench-token-%09d", seq) }

// startTokenfile follows path with a Watcher until the benchmark ends.
func startTokenfile(b *testing.B, path, _ string, seen chan<- seenToken) {
	var w *tokenfile.Watcher
	w, err := tokenfile.New(path, tokenfile.WithOnChange(func(tok string) {
		if w.Token() != tok {
			b.Error("the callback ran before Token served the new token")
		}
		seen <- seenToken{tok, time.Now()}
	}))
	mustB(b, err)
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

// startBare is the reference: fsnotify on dir, and os.ReadFile of path on
// every event, reporting each new content.
func startBare(b *testing.B, path, dir string, seen chan<- seenToken) {
	n, err := fsnotify.NewWatcher()
	mustB(b, err)
	mustB(b, n.Add(dir))
	var last atomic.Value
	last.Store("")
	done := make(chan struct{})
	go func() {
		defer close(done)
		report := func() {
			if c, err := os.ReadFile(path); err == nil && string(c) != last.Load() {
				last.Store(string(c))
				seen <- seenToken{string(c), time.Now()}
			}
		}
		report()
		for {
			select {
			case _, ok := <-n.Events:
				if !ok {
					return
				}
				report()
			case _, ok := <-n.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	b.Cleanup(func() { _ = n.Close(); <-done })
}

func mustB(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// percentile returns the p-th percentile of sorted, in microseconds.
func percentile(sorted []time.Duration, p int) float64 {
	i := min(len(sorted)-1, len(sorted)*p/100)
	return float64(sorted[i].Nanoseconds()) / 1e3
}
