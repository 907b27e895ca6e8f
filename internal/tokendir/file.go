package tokendir

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotRegular is returned when a file's path exists but is not a regular
// file (a directory, a symlink, a device, ...): tokend never replaces one.
var ErrNotRegular = errors.New("target exists and is not a regular file")

// tempInfix marks temporary files as ours: ".<name>" + tempInfix + random.
const tempInfix = ".tokend-tmp-"

// maxRead bounds how much of an existing file the Dir looks at.
const maxRead = 1 << 20

// WriteFile replaces the content of the file at path with data and mode,
// atomically: a reader in another process sees the old content or the new,
// never a mix, a partial write or an empty file. Its steps:
//
//  1. Refuse unless path is a regular file or absent (ErrNotRegular).
//  2. Return changed false, writing nothing (watchers see no event), when
//     the file already holds data with mode.
//  3. Create ".<name>.tokend-tmp-<random>" beside it: O_EXCL, mode 0600.
//  4. Write data, set mode with fchmod (whatever the umask), fsync.
//  5. Rename it over path, and fsync the directory so that the rename
//     survives a crash.
//
// Any failure removes the temporary file and leaves the file untouched,
// except a failed directory fsync, reported after the new content is in
// place (changed true). The caveat of every rename-based scheme applies: a
// reader that keeps the old file open, or a bind mount of the file itself
// (a Kubernetes subPath), keeps seeing the old content, and a path that is
// a mount point cannot be renamed over at all (EBUSY).
//
// Errors name the path and, for the failures a deployment causes
// (permissions, a read-only or full volume, a mount point), say what to
// change. Calls for different paths are safe concurrently; one path needs
// one writer.
func WriteFile(path string, data []byte, mode fs.FileMode) (changed bool, err error) {
	path, mode = filepath.Clean(path), mode.Perm()
	fi, err := checkTarget(path)
	if err != nil {
		return false, err
	}
	if fi != nil && fi.Mode().Perm() == mode {
		if cur, err := readFile(path, int64(len(data))); err == nil && bytes.Equal(cur, data) {
			return false, nil
		}
	}
	f, err := createTemp(path)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	_, err = f.Write(data)
	for _, step := range []func() error{func() error { return f.Chmod(mode) }, f.Sync, f.Close} {
		if err == nil {
			err = step()
		}
	}
	if err != nil {
		return false, fmt.Errorf("writing a temporary file: %w%s", err, hint(path, err))
	}
	// The target may have become a directory or symlink since the check;
	// rename(2) would then fail or replace the link itself, never follow it.
	if err = os.Rename(f.Name(), path); err != nil {
		return false, fmt.Errorf("renaming into %s: %w%s", path, cause(err), hint(path, err))
	}
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return true, fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return true, nil
}

// CheckFile verifies, before tokend starts, that WriteFile can work on
// path: its directory exists and is writable (a temporary file is created
// and removed), and path is a regular file or absent. Its errors are
// WriteFile's.
func CheckFile(path string) error {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("directory %s: %w", dir, cmp.Or(cause(err), error(syscall.ENOTDIR)))
	}
	if _, err := checkTarget(path); err != nil {
		return err
	}
	f, err := createTemp(path)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// readFile returns the content of the regular file at path, at most limit
// bytes (and one more, so that the caller can tell a longer file).
func readFile(path string, limit int64) ([]byte, error) {
	if _, err := checkTarget(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// checkTarget returns path's FileInfo, nil when path is absent, and
// ErrNotRegular when it is not a regular file.
func checkTarget(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, cmp.Or(kinds[fi.Mode().Type()], "non-regular file"))
	}
	return fi, err
}

// kinds names the types of file checkTarget refuses.
var kinds = map[fs.FileMode]string{fs.ModeSymlink: "symlink", fs.ModeDir: "directory", fs.ModeNamedPipe: "named pipe",
	fs.ModeSocket: "socket", fs.ModeDevice: "device", fs.ModeDevice | fs.ModeCharDevice: "device"}

// createTemp is WriteFile's step 3.
func createTemp(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("cannot create a file in directory %s: %w%s", dir, cause(err), hint(path, err))
	}
	return f, nil
}

// cause drops the *fs.PathError or *os.LinkError wrapper, whose message
// repeats a path the caller already names.
func cause(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// hint explains a failure to write path that a deployment causes
// (permissions, a read-only or full volume, a mount point): "; " and the
// fix, or "" for any other failure.
func hint(path string, err error) string {
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		groups, _ := os.Getgroups()
		who := fmt.Sprintf("; tokend runs as uid %d, gid %d", os.Getuid(), os.Getgid())
		if len(groups) > 0 {
			who += fmt.Sprintf(" (supplementary groups %v)", groups)
		}
		if fi, err := os.Stat(dir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				who += fmt.Sprintf(", and %s is owned by uid %d, gid %d with mode %04o", dir, st.Uid, st.Gid, fi.Mode().Perm())
			}
		}
		return who + ": set the pod's securityContext.fsGroup (Kubernetes then makes the volume group-writable by it), " +
			"or make the volume's directory writable by that uid or gid; a fresh emptyDir is writable by every user"
	case errors.Is(err, syscall.EROFS):
		return "; the volume holding " + dir + " is mounted read-only: mount it read-write in tokend's container"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "; the volume holding " + dir + " is full (no free space or no free inodes): free some, or give it more room (an emptyDir's sizeLimit)"
	case errors.Is(err, syscall.EBUSY): // renaming onto a subPath or bind mount of the file
		return "; " + path + " is a mount point (a Kubernetes subPath mount, or a bind mount of the single file), which no rename may replace: " +
			"mount the directory instead, without subPath, and point the token file into it"
	}
	return ""
}
