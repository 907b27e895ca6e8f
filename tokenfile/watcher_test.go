package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReplacementStyles rotates the token through each way a file gets
// replaced and checks that every rotation is observed, through real files
// and real fsnotify events.
func TestReplacementStyles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) (path string) // creates nothing
		write func(t *testing.T, path, tok string, seq int)
	}{{
		name:  "rename into place",
		setup: plainPath,
		write: func(t *testing.T, path, tok string, _ int) { writeRename(t, path, tok) },
	}, {
		name:  "truncate and write in place",
		setup: plainPath,
		write: func(t *testing.T, path, tok string, _ int) { writeInPlace(t, path, tok) },
	}, {
		name:  "delete and recreate",
		setup: plainPath,
		write: func(t *testing.T, path, tok string, _ int) {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			writeInPlace(t, path, tok)
		},
	}, {
		name:  "directory removed and recreated",
		setup: plainPath,
		write: func(t *testing.T, path, tok string, _ int) {
			must(t, os.RemoveAll(filepath.Dir(path)))
			must(t, os.Mkdir(filepath.Dir(path), 0o755))
			writeRename(t, path, tok)
		},
	}, {
		name:  "kubelet atomic writer",
		setup: plainPath,
		write: func(t *testing.T, path, tok string, seq int) { kubeletWrite(t, filepath.Dir(path), tok, seq) },
	}, {
		name: "symlink into another directory",
		setup: func(t *testing.T, root string) string {
			must(t, os.Mkdir(filepath.Join(root, "real"), 0o755))
			must(t, os.Symlink(filepath.Join(root, "real", "token"), filepath.Join(root, "dir", "token")))
			return filepath.Join(root, "dir", "token")
		},
		write: func(t *testing.T, path, tok string, _ int) {
			writeRename(t, filepath.Join(filepath.Dir(filepath.Dir(path)), "real", "token"), tok)
		},
	}, {
		name:  "symlinked directory swapped, old one kept",
		setup: dirSwapPath,
		write: func(t *testing.T, path, tok string, seq int) { dirSwap(t, path, tok, seq, false) },
	}, {
		name:  "symlinked directory swapped, old one removed",
		setup: dirSwapPath,
		write: func(t *testing.T, path, tok string, seq int) { dirSwap(t, path, tok, seq, true) },
	}, {
		name: "symlinked ancestor swapped",
		setup: func(t *testing.T, root string) string {
			return filepath.Join(root, "dir", "current", "sub", "token")
		},
		write: func(t *testing.T, path, tok string, seq int) {
			release := filepath.Join(filepath.Dir(filepath.Dir(path)), "..", "releases", fmt.Sprint(seq))
			must(t, os.MkdirAll(filepath.Join(release, "sub"), 0o755))
			must(t, os.WriteFile(filepath.Join(release, "sub", "token"), []byte(tok), 0o644))
			swapLink(t, filepath.Dir(filepath.Dir(path)), filepath.Join("releases", fmt.Sprint(seq)))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			must(t, os.Mkdir(filepath.Join(root, "dir"), 0o755))
			path := tt.setup(t, root)
			tokens := []string{"token-one", "token-two", "token-three", "token-four"}
			tt.write(t, path, tokens[0], 0)
			// Only an event can deliver a change: the poll never ticks.
			h := newHarness(t, path, func(_ *harness, k *hooks) { k.tick = make(chan time.Time) })
			h.start(tokens...)
			h.expect(tokens[0])
			for i, tok := range tokens[1:] {
				tt.write(t, path, tok, i+1)
				h.expect(tok)
				if got := h.w.Token(); got != tok {
					t.Fatalf("rotation %d: Token() is not the token the callback saw", i+1)
				}
			}
			h.noChange()
		})
	}
}

func plainPath(t *testing.T, root string) string { return filepath.Join(root, "dir", "token") }

// dirSwapPath is base/current/token, where current is a symlink to a
// versioned directory that dirSwap replaces.
func dirSwapPath(t *testing.T, root string) string {
	return filepath.Join(root, "dir", "current", "token")
}

// dirSwap publishes tok the way cert-manager's csi-driver and many
// hand-made rotations do: mkdir v<seq>; write v<seq>/token;
// ln -s v<seq> current.tmp; mv -T current.tmp current; and, if remove,
// rm -r the previous version.
func dirSwap(t *testing.T, path, tok string, seq int, remove bool) {
	t.Helper()
	base := filepath.Dir(filepath.Dir(path))
	v := fmt.Sprintf("v%d", seq)
	must(t, os.Mkdir(filepath.Join(base, v), 0o755))
	must(t, os.WriteFile(filepath.Join(base, v, "token"), []byte(tok), 0o644))
	old := swapLink(t, filepath.Dir(path), v)
	if remove && old != "" {
		must(t, os.RemoveAll(filepath.Join(base, old)))
	}
}

// swapLink points the symlink at link to target by renaming a new symlink
// over it, and returns the previous target ("" if there was none).
func swapLink(t *testing.T, link, target string) (old string) {
	t.Helper()
	old, _ = os.Readlink(link)
	must(t, os.Symlink(target, link+".tmp"))
	must(t, os.Rename(link+".tmp", link))
	return old
}

// TestKeepLastGood walks the file through states that must not replace the
// token, and checks the state each one leaves.
func TestKeepLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "good-A")
	h := newHarness(t, path)
	h.start("good-A", "good-B")
	h.expect("good-A")
	phases := []struct {
		name    string
		do      func()
		token   string
		wantErr error
	}{
		{"removed", func() { must(t, os.Remove(path)) }, "good-A", ErrMissing},
		{"empty", func() { writeRename(t, path, "") }, "good-A", ErrEmpty},
		{"newline only", func() { writeRename(t, path, "\n") }, "good-A", ErrEmpty},
		{"whitespace inside", func() { writeRename(t, path, "good B") }, "good-A", ErrInvalid},
		{"newline inside", func() { writeRename(t, path, "good\nB\n") }, "good-A", ErrInvalid},
		{"crlf", func() { writeRename(t, path, "good-B\r\n") }, "good-A", ErrInvalid},
		{"a directory", func() { must(t, os.Remove(path)); must(t, os.Mkdir(path, 0o755)) }, "good-A", ErrInvalid},
		{"back with newline", func() { must(t, os.Remove(path)); writeRename(t, path, "good-B\n") }, "good-B", nil},
		{"same again", func() { writeRename(t, path, "good-B") }, "good-B", nil},
	}
	for _, p := range phases {
		p.do()
		s := h.waitFor(p.name, func(s Snapshot) bool {
			return s.Token == p.token && (p.wantErr == nil) == (s.Err == nil) &&
				(p.wantErr == nil || errors.Is(s.Err, p.wantErr))
		})
		if s.Stale() != (p.wantErr != nil) {
			t.Errorf("%s: Stale() = %v", p.name, s.Stale())
		}
	}
	h.expect("good-B")
	writeRename(t, path, "good-C")
	h.expect("good-C") // and not a second good-B before it
	if errors.Is(h.w.Current().Err, ErrMissing) != false {
		t.Error("ErrMissing after recovery")
	}
}

// TestMissingAtStart checks that a file that does not exist yet, in a
// directory that does not exist yet, is waited for.
func TestMissingAtStart(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "token")
	h := newHarness(t, path)
	h.start("late-token")
	h.waitFor("reports the file missing", func(s Snapshot) bool { return errors.Is(s.Err, ErrMissing) })
	select {
	case <-h.w.Ready():
		t.Fatal("Ready before the file exists")
	default:
	}
	if h.w.Current().HasToken() {
		t.Fatal("HasToken before the file exists")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.w.Wait(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrMissing) {
		t.Fatalf("Wait with a cancelled context: %v; want it to match context.Canceled and ErrMissing", err)
	}
	must(t, os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
	writeRename(t, path, "late-token")
	ctx, cancel = context.WithTimeout(t.Context(), deadline)
	defer cancel()
	tok, err := h.w.Wait(ctx)
	if err != nil || tok != "late-token" {
		t.Fatalf("Wait: %v", err)
	}
	h.expect("late-token")
	select {
	case <-h.w.Ready():
	default:
		t.Fatal("Wait returned a token but Ready is not closed")
	}
	if !h.w.Current().HasToken() {
		t.Fatal("Ready is closed but HasToken is false")
	}
}

// TestCallbacksOrdered rotates faster than the callbacks can keep up and
// checks that they run one at a time, in order, end with the last token,
// and never repeat one.
func TestCallbacksOrdered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	writeRename(t, path, "tok-000")
	h := newHarness(t, path)
	var inside, overlaps int
	h.w.onChange = append(h.w.onChange, func(string) {
		inside++ // only Run's goroutine writes; -race reports any other
		if inside != 1 {
			overlaps++
		}
		inside--
	})
	h.start()
	h.expect("tok-000")
	const n = 200
	for i := 1; i <= n; i++ {
		writeRename(t, path, fmt.Sprintf("tok-%03d", i))
	}
	last := 0
	for last != n {
		var i int
		if _, err := fmt.Sscanf(h.next(), "tok-%03d", &i); err != nil {
			t.Fatal(err)
		}
		if i <= last {
			t.Fatalf("change %d after %d", i, last)
		}
		last = i
	}
	if overlaps != 0 {
		t.Fatalf("%d callbacks overlapped", overlaps)
	}
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t, filepath.Join(t.TempDir(), "token"))
	h.start()
	h.waitFor("read the file", func(s Snapshot) bool { return s.Err != ErrNotReady })
	if err := h.w.Run(t.Context()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		path string
		opts []Option
	}{
		{"empty path", "", nil},
		{"zero poll interval", "token", []Option{WithPollInterval(0)}},
		{"nil clock", "token", []Option{WithClock(nil)}},
		{"nil callback", "token", []Option{WithOnChange(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.path, tt.opts...); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}
