package tokenfile

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestResolve builds real layouts and checks which file a path leads to
// and which directories must be watched for it.
func TestResolve(t *testing.T) {
	tests := []struct {
		name   string
		layout func(root string)
		path   string
		real   string   // relative to root; "" for none
		dirs   []string // relative to root
	}{{
		name:   "plain file",
		layout: func(r string) { mkfile(t, r, "d/token") },
		path:   "d/token", real: "d/token", dirs: []string{"d"},
	}, {
		name:   "missing directories",
		layout: func(r string) { must(t, os.Mkdir(filepath.Join(r, "d"), 0o755)) },
		path:   "d/a/b/token", dirs: []string{"d"},
	}, {
		name: "kubelet layout",
		layout: func(r string) {
			mkfile(t, r, "d/..2026/token")
			link(t, r, "d/..data", "..2026")
			link(t, r, "d/token", "..data/token")
		},
		path: "d/token", real: "d/..2026/token", dirs: []string{"d", "d/..2026"},
	}, {
		name: "symlinked directory",
		layout: func(r string) {
			mkfile(t, r, "d/v1/token")
			link(t, r, "d/current", "v1")
		},
		path: "d/current/token", real: "d/v1/token", dirs: []string{"d", "d/v1"},
	}, {
		name: "absolute link through a relative one",
		layout: func(r string) {
			mkfile(t, r, "rel/x/token")
			link(t, r, "d/abs", filepath.Join(r, "d", "up"))
			link(t, r, "d/up", "../rel")
		},
		path: "d/abs/x/token", real: "rel/x/token", dirs: []string{"d", "rel/x"},
	}, {
		name:   "link loop",
		layout: func(r string) { link(t, r, "d/a", "b"); link(t, r, "d/b", "a") },
		path:   "d/a/token", dirs: []string{"d"},
	}, {
		name:   "a file where a directory should be",
		layout: func(r string) { mkfile(t, r, "d/f") },
		path:   "d/f/token", dirs: []string{"d"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := filepath.EvalSymlinks(t.TempDir())
			must(t, err)
			tt.layout(root)
			real, dirs := resolve(filepath.Join(root, tt.path))
			wantReal := ""
			if tt.real != "" {
				wantReal = filepath.Join(root, tt.real)
			}
			var want []string
			for _, d := range tt.dirs {
				want = append(want, filepath.Join(root, d))
			}
			if real != wantReal || !slices.Equal(dirs, want) {
				t.Fatalf("resolve: %q %q, want %q %q", real, dirs, wantReal, want)
			}
		})
	}
}

func mkfile(t *testing.T, root, rel string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755))
	must(t, os.WriteFile(filepath.Join(root, rel), []byte("x"), 0o600))
}

func link(t *testing.T, root, rel, target string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755))
	must(t, os.Symlink(target, filepath.Join(root, rel)))
}

// TestSwapMovesWatches swaps a symlinked directory several times, keeping
// the old versions, and checks that the watches follow the link rather
// than pile up on every version.
func TestSwapMovesWatches(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	path := dirSwapPath(t, root)
	must(t, os.Mkdir(filepath.Join(root, "dir"), 0o755))
	tick := make(chan time.Time)
	built := make(chan *fsnotify.Watcher, 1)
	h := newHarness(t, path, func(_ *harness, k *hooks) {
		k.tick = tick
		k.newNotify = func() (*fsnotify.Watcher, error) {
			n, err := fsnotify.NewWatcher()
			if err == nil {
				built <- n
			}
			return n, err
		}
	})
	dirSwap(t, path, "swap-0", 0, false)
	h.start()
	h.expect("swap-0")
	n := receive(t, built)
	for i := 1; i <= 5; i++ {
		tok := fmt.Sprintf("swap-%d", i)
		dirSwap(t, path, tok, i, false)
		h.expect(tok)
	}
	tick <- time.Now()
	tick <- time.Now() // received once the first tick's read and sync are over
	got := n.WatchList()
	slices.Sort(got)
	want := []string{filepath.Join(root, "dir"), filepath.Join(root, "dir", "v5")}
	if !slices.Equal(got, want) {
		t.Fatalf("watching %q, want %q", got, want)
	}
}
