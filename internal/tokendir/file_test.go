package tokendir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

func TestWriteCreatesWithExactMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, mode := range []fs.FileMode{0o640, 0o644, 0o400} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			changed, err := WriteFile(path, []byte("tok-1"), mode)
			if err != nil || !changed {
				t.Fatalf("Write = %v, %v", changed, err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("mode %v, want %v despite umask 077", fi.Mode().Perm(), mode)
			}
			if got, _ := os.ReadFile(path); string(got) != "tok-1" {
				t.Errorf("content %q, want exactly the token bytes", got)
			}
		})
	}
}

func TestWriteUnchangedIsNotRewritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if _, err := WriteFile(path, []byte("same"), 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	changed, err := WriteFile(path, []byte("same"), 0o640)
	if err != nil || changed {
		t.Fatalf("second Write = %v, %v; want unchanged", changed, err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("file replaced although content was the same")
	}
	// A different mode or content is a change.
	if changed, _ := WriteFile(path, []byte("same"), 0o600); !changed {
		t.Error("mode change not written")
	}
	if changed, _ := WriteFile(path, []byte("other"), 0o600); !changed {
		t.Error("content change not written")
	}
}

func TestWriteRefusesNonRegularTarget(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]func(path string){
		"directory":        func(p string) { os.Mkdir(p, 0o755) },
		"symlink":          func(p string) { os.WriteFile(p+".real", []byte("x"), 0o600); os.Symlink(p+".real", p) },
		"dangling symlink": func(p string) { os.Symlink(filepath.Join(dir, "nowhere"), p) },
		"named pipe":       func(p string) { syscall.Mkfifo(p, 0o600) },
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			setup(path)
			before, _ := os.Lstat(path)
			if _, err := WriteFile(path, []byte("tok"), 0o640); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("Write err = %v, want ErrNotRegular", err)
			}
			if err := CheckFile(path); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("CheckFile err = %v, want ErrNotRegular", err)
			}
			after, _ := os.Lstat(path)
			if !os.SameFile(before, after) {
				t.Error("target was replaced")
			}
			assertNoTemp(t, dir)
		})
	}
}

func TestWriteFailureLeavesTargetAndNoTemp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "token")
	if _, err := WriteFile(path, []byte("good"), 0o640); err != nil {
		t.Fatal(err)
	}
	// The target turns into a directory between check and rename: rename
	// fails and the temporary file must go.
	os.Remove(path)
	os.Mkdir(path, 0o755)
	os.WriteFile(filepath.Join(path, "child"), nil, 0o600)
	if _, err := WriteFile(path, []byte("new"), 0o640); err == nil {
		t.Fatal("Write into a non-empty directory target succeeded")
	}
	assertNoTemp(t, dir)
	// The directory vanishes: a clear error naming it.
	os.RemoveAll(dir)
	_, err := WriteFile(path, []byte("new"), 0o640)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(dir)) {
		t.Fatalf("Write into a removed directory: %v", err)
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFile(filepath.Join(dir, "token")); err != nil {
		t.Fatalf("CheckFile on a fresh dir: %v", err)
	}
	if err := CheckFile(filepath.Join(dir, "missing", "token")); err == nil {
		t.Fatal("CheckFile accepted a missing directory")
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	if err := CheckFile(filepath.Join(dir, "file", "token")); err == nil {
		t.Fatal("CheckFile accepted a file as directory")
	}
	assertNoTemp(t, dir)
}

func TestCleanTempRemovesOnlyOurs(t *testing.T) {
	dir := t.TempDir()
	ours := []string{".token.tokend-tmp-123", ".token.tokend-tmp-abc"}
	theirs := []string{"token", ".other.tokend-tmp-1", ".token.swp", "..data"}
	for _, n := range append(ours, theirs...) {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600)
	}
	os.Mkdir(filepath.Join(dir, ".token.tokend-tmp-dir"), 0o755)
	n, err := New(Options{TokenFile: filepath.Join(dir, "token")}).CleanTemp()
	if err != nil || n != len(ours) {
		t.Fatalf("CleanTemp = %d, %v; want %d", n, err, len(ours))
	}
	for _, name := range theirs {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed", name)
		}
	}
}

// TestConcurrentReadersSeeWholeTokens rotates the file quickly between
// tokens of different lengths while readers reopen it in a loop: every read
// must be exactly one of the tokens written, never empty, partial or mixed.
func TestConcurrentReadersSeeWholeTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	tokens := map[string]bool{}
	var list [][]byte
	for i := range 16 {
		tok := bytes.Repeat([]byte{byte('a' + i)}, 10+i*37)
		tokens[string(tok)] = true
		list = append(list, tok)
	}
	if _, err := WriteFile(path, list[0], 0o640); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b, err := os.ReadFile(path)
				reads.Add(1)
				if err != nil || !tokens[string(b)] {
					bad.Add(1)
				}
			}
		}()
	}
	for i := range 500 {
		if _, err := WriteFile(path, list[i%len(list)], 0o640); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads saw a bad value", bad.Load(), reads.Load())
	}
	t.Logf("%d reads during 500 rotations, all whole", reads.Load())
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, ".*"+tempInfix+"*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

func BenchmarkWrite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "token")
	tok := bytes.Repeat([]byte("x"), 900)
	b.Run("changed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			copy(tok, fmt.Sprintf("%08d", i))
			if _, err := WriteFile(path, tok, 0o640); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if changed, err := WriteFile(path, tok, 0o640); err != nil || changed {
				b.Fatal(changed, err)
			}
		}
	})
}
