package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/test/ostest"
	"github.com/ambient-code/tokend/test/testkit"
)

// openDir returns a new directory that other users may enter (t.TempDir's
// parent is private to its owner).
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPublicKeyFileErrorsNameThePath: every problem with --public-key-file
// names the file, and a mangled PEM in it says how to pass a key.
func TestPublicKeyFileErrorsNameThePath(t *testing.T) {
	dir := openDir(t)
	mangled := filepath.Join(dir, "literal.pem")
	if err := os.WriteFile(mangled, []byte(strings.ReplaceAll(strings.TrimSpace(pubPEM(t)), "\n", `\n`)), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.WriteFile(unreadable, []byte(pubPEM(t)), 0); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, path string
		want       []string
	}{
		{"missing", missing, []string{"cannot read " + missing, "no such file"}},
		{"literal \\n", mangled, []string{mangled, `found literal \n sequences`, "real line breaks"}},
		{"unreadable", unreadable, []string{"cannot read " + unreadable, "permission denied"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := env(t, map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": "", "TOKEND_PUBLIC_KEY_FILE": tt.path, "TOKEND_TOKEN_FILE": filepath.Join(openDir(t), "token")})
			err := ostest.AsNonRoot(t, func() error {
				_, err := parse("run", nil, get)
				return err
			})
			var ce *invalidError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *invalidError", err)
			}
			testkit.WantHint(t, err, append([]string{"TOKEND_PUBLIC_KEY_FILE (--public-key-file): "}, tt.want...)...)
		})
	}
}

// TestTokenDirectoryNotWritable: the configuration error says who tokend
// runs as, who owns the directory, and the fix.
func TestTokenDirectoryNotWritable(t *testing.T) {
	dir := openDir(t)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	get := env(t, map[string]string{"TOKEND_TOKEN_FILE": filepath.Join(dir, "token")})
	var uid int
	err := ostest.AsNonRoot(t, func() error {
		uid = os.Getuid()
		_, err := parse("run", nil, get)
		return err
	})
	var ce *invalidError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *invalidError", err)
	}
	testkit.WantHint(t, err, "TOKEND_TOKEN_FILE (--token-file): cannot create a file in directory "+dir,
		fmt.Sprintf("tokend runs as uid %d", uid), "with mode 0555", "securityContext.fsGroup")
}

// TestFullTokenVolumeIsARuntimeFailure: a token volume without free inodes
// is not a configuration mistake; load says what is wrong with an error
// that is not an *invalidError, so that tokend exits 1, not 2. (Without free
// blocks, the check's empty file still fits; the first write then fails,
// at run time too.)
func TestFullTokenVolumeIsARuntimeFailure(t *testing.T) {
	dir := t.TempDir()
	err := ostest.InMountNamespace(t, func() error {
		if err := syscall.Mount("tokend-test", dir, "tmpfs", 0, "size=64k,nr_inodes=2"); err != nil {
			return fmt.Errorf("mount tmpfs: %w", err)
		}
		// The root directory holds one inode; this file takes the other.
		if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o600); err != nil {
			return fmt.Errorf("filling the volume: %w", err)
		}
		_, err := parse("run", nil, env(t, map[string]string{"TOKEND_TOKEN_FILE": filepath.Join(dir, "token")}))
		return err
	})
	var ce *invalidError
	if errors.As(err, &ce) {
		t.Fatalf("a full volume is reported as invalid configuration:\n%v", err)
	}
	testkit.WantHint(t, err, "TOKEND_TOKEN_FILE (--token-file): ", "no space left on device", "no free inodes")
}
