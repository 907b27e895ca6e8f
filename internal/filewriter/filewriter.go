// Package filewriter replaces a small file atomically, so that a reader in
// another process sees either the old content or the new, never a mix, a
// partial write or an empty file.
//
// Write follows these steps:
//
//  1. Refuse to go on unless the target is a regular file or absent (never
//     replace a directory, a symlink or a device).
//  2. Return without writing when the target already holds the same bytes
//     with the same mode, so that watchers see no event.
//  3. Create a temporary file beside the target, named
//     ".<name>.tokend-tmp-<random>", with O_EXCL and mode 0600.
//  4. Write the bytes, set the exact mode with fchmod (independent of the
//     umask), and fsync.
//  5. Rename the temporary file over the target, then fsync the directory so
//     that the rename survives a crash.
//
// Any failure removes the temporary file and leaves the target untouched.
// The caveat of every rename-based scheme applies: a reader that keeps the
// old file open, or a bind mount of the file itself (a Kubernetes subPath),
// keeps seeing the old content; readers must reopen the path. A target that
// is itself a mount point cannot be renamed over at all (EBUSY).
//
// Error messages are written for the person running tokend: they name the
// path and, for the failures a deployment causes (permissions, a read-only
// or full volume, a mount point), say what to change. They carry no package
// prefix.
package filewriter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotRegular is returned when the target exists but is not a regular
// file (a directory, a symlink, a device, ...).
var ErrNotRegular = errors.New("target exists and is not a regular file")

// tempInfix marks temporary files as ours: ".<name>" + tempInfix + random.
const tempInfix = ".tokend-tmp-"

// maxRead bounds how much of an existing target Write and Read look at.
const maxRead = 1 << 20

// Writer writes one file atomically. Its methods are safe for use by one
// goroutine at a time; a Writer holds no open files between calls.
type Writer struct {
	path string
	dir  string
	base string
	mode fs.FileMode
}

// New returns a Writer for path with the given permission bits. It checks
// nothing on disk; call Check for that.
func New(path string, mode fs.FileMode) *Writer {
	path = filepath.Clean(path)
	return &Writer{path: path, dir: filepath.Dir(path), base: filepath.Base(path), mode: mode.Perm()}
}

// Path returns the target's path.
func (w *Writer) Path() string { return w.path }

// Check verifies that Write can work: the directory exists, is a directory
// and is writable (proved by creating and removing a temporary file), and the
// target is a regular file or absent.
func (w *Writer) Check() error {
	fi, err := os.Stat(w.dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", w.dir, cause(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", w.dir)
	}
	if err := w.checkTarget(); err != nil {
		return err
	}
	f, err := w.createTemp()
	if err != nil {
		return fmt.Errorf("cannot create a file in directory %s: %w%s", w.dir, cause(err), dirHint(w.dir, err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// Write replaces the target's content with data; see the package
// documentation for the steps. changed reports whether the target was
// replaced; it is false when the target already held data with the mode.
func (w *Writer) Write(data []byte) (changed bool, err error) {
	if err := w.checkTarget(); err != nil {
		return false, err
	}
	if w.same(data) {
		return false, nil
	}
	f, err := w.createTemp()
	if err != nil {
		return false, fmt.Errorf("creating a temporary file in %s: %w%s", w.dir, cause(err), dirHint(w.dir, err))
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return false, fmt.Errorf("writing %s: %w%s", tmp, cause(err), dirHint(w.dir, err))
	}
	if err = f.Chmod(w.mode); err != nil {
		return false, fmt.Errorf("chmod %s: %w", tmp, cause(err))
	}
	if err = f.Sync(); err != nil {
		return false, fmt.Errorf("fsync %s: %w%s", tmp, cause(err), dirHint(w.dir, err))
	}
	if err = f.Close(); err != nil {
		return false, fmt.Errorf("closing %s: %w%s", tmp, cause(err), dirHint(w.dir, err))
	}
	// The target may have become a directory or symlink since the check;
	// rename(2) would then fail or replace the link itself, never follow it.
	if err = os.Rename(tmp, w.path); err != nil {
		return false, fmt.Errorf("renaming into %s: %w%s", w.path, cause(err), renameHint(w.path, err))
	}
	if err = syncDir(w.dir); err != nil {
		// The new content is in place; only its durability across a crash
		// is in doubt. Report it without undoing the write.
		return true, fmt.Errorf("fsync directory %s: %w", w.dir, err)
	}
	return true, nil
}

// Read returns the target's content, at most 1 MiB. It refuses a target
// that is not a regular file.
func (w *Writer) Read() ([]byte, error) {
	if err := w.checkTarget(); err != nil {
		return nil, err
	}
	f, err := os.Open(w.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxRead))
}

// CleanTemp removes temporary files that an earlier run left behind when it
// crashed between steps 3 and 5. It returns how many it removed. Call it
// before the first Write, from the only process writing the target.
func (w *Writer) CleanTemp() (int, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", w.dir, cause(err))
	}
	prefix := "." + w.base + tempInfix
	n := 0
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if err := os.Remove(filepath.Join(w.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (w *Writer) checkTarget() error {
	fi, err := os.Lstat(w.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is a %s", ErrNotRegular, w.path, kind(fi.Mode()))
	}
	return nil
}

// same reports whether the target already holds data with w's mode.
func (w *Writer) same(data []byte) bool {
	f, err := os.Open(w.path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != w.mode || fi.Size() != int64(len(data)) {
		return false
	}
	cur, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	return err == nil && bytes.Equal(cur, data)
}

func (w *Writer) createTemp() (*os.File, error) {
	return os.CreateTemp(w.dir, "."+w.base+tempInfix+"*")
}

// cause drops the *fs.PathError or *os.LinkError wrapper, whose message
// repeats a path the caller already names.
func cause(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "non-regular file"
}
