package ostest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestAsNonRootCannotWriteARootDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	err := AsNonRoot(t, func() error {
		if os.Getuid() == 0 || os.Getgid() == 0 {
			return errors.New("still root")
		}
		return os.WriteFile(filepath.Join(dir, "f"), nil, 0o600)
	})
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("write as non-root = %v, want permission denied", err)
	}
	if os.Geteuid() == 0 {
		// The switch stayed on its thread: this goroutine is still root.
		if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
			t.Fatalf("root after AsNonRoot: %v", err)
		}
	}
}

func TestInMountNamespaceStaysInside(t *testing.T) {
	dir := t.TempDir()
	err := InMountNamespace(t, func() error {
		if err := syscall.Mount("ostest", dir, "tmpfs", 0, "size=64k"); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "inside"), nil, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inside")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file written on the private tmpfs is visible outside: %v", err)
	}
}
