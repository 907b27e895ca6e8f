package tokendir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/test/ostest"
	"github.com/ambient-code/tokend/test/testkit"
)

// sharedDir returns a directory that other users may enter but not write,
// inside a parent they may enter too (t.TempDir's parent is private).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckNotWritableSaysWhoAndTheFix(t *testing.T) {
	dir := sharedDir(t)
	var uid, gid int
	err := ostest.AsNonRoot(t, func() error {
		uid, gid = os.Getuid(), os.Getgid()
		return CheckFile(filepath.Join(dir, "token"))
	})
	fi, serr := os.Stat(dir)
	if serr != nil {
		t.Fatal(serr)
	}
	st := fi.Sys().(*syscall.Stat_t)
	testkit.WantHint(t, err,
		"cannot create a file in directory "+dir,
		"permission denied",
		fmt.Sprintf("tokend runs as uid %d, gid %d", uid, gid),
		fmt.Sprintf("owned by uid %d, gid %d with mode 0555", st.Uid, st.Gid),
		"securityContext.fsGroup")
}

func TestWriteOntoAMountPointSaysMountTheDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	src := filepath.Join(t.TempDir(), "projected")
	for _, f := range []string{path, src} {
		if err := os.WriteFile(f, []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	err := ostest.InMountNamespace(t, func() error {
		// What a subPath mount or a single-file bind mount makes.
		if err := syscall.Mount(src, path, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount: %w", err)
		}
		_, err := WriteFile(path, []byte("new"), 0o640)
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("Write onto a mount point = %v, want EBUSY", err)
		}
		return err
	})
	testkit.WantHint(t, err, "renaming into "+path, "is a mount point", "subPath", "mount the directory instead")
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".token"+tempInfix+"*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestFullVolumeSaysSo(t *testing.T) {
	tests := []struct {
		name, opts string
		fill       func(dir string) error
		op         func(path string) error
	}{
		{"no free inodes at CheckFile", "size=64k,nr_inodes=2", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "other"), nil, 0o600)
		}, CheckFile},
		{"no free space at WriteFile", "size=8k", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "other"), make([]byte, 8<<10), 0o600)
		}, func(path string) error { _, err := WriteFile(path, make([]byte, 4<<10), 0o640); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := ostest.InMountNamespace(t, func() error {
				if err := syscall.Mount("tokend-test", dir, "tmpfs", 0, tt.opts); err != nil {
					return fmt.Errorf("mount tmpfs: %w", err)
				}
				if err := tt.fill(dir); err != nil {
					return fmt.Errorf("filling the volume: %w", err)
				}
				err := tt.op(filepath.Join(dir, "token"))
				if !errors.Is(err, syscall.ENOSPC) {
					return fmt.Errorf("on a full volume: %v, want ENOSPC", err)
				}
				return err
			})
			testkit.WantHint(t, err, "no space left on device", "is full (no free space or no free inodes)", "sizeLimit")
		})
	}
}
