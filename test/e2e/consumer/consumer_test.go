package consumer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// reader runs reader.sh on the token file path and returns the process
// and its output lines.
func reader(t *testing.T, path string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command("sh", "reader.sh")
	cmd.Env = append(os.Environ(), "TOKEN_FILE="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	return cmd, lines
}

// next returns the next line that starts with prefix, failing when the
// output ends first.
func next(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(testkit.Patience)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line starting %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line starting %q", prefix)
		}
	}
}

// fingerprint is tokend's name for a token: sha256's first 12 hex digits.
func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:6])
}

// replace writes v to path as tokend does: a new file renamed over it.
func replace(t *testing.T, path, v string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReaderSeesEachToken: the reader's first line names the token on disk
// by tokend's fingerprint, each replacement prints the new one, a removed
// file is reported, and SIGUSR1 ends it with status 0.
func TestReaderSeesEachToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	replace(t, path, "first-token")
	cmd, lines := reader(t, path)
	start := next(t, lines, "start:")
	if want := "token sha256 " + fingerprint("first-token") + ", owner uid "; !strings.Contains(start, want) {
		t.Fatalf("start line %q does not hold %q", start, want)
	}
	replace(t, path, "second-token")
	if l, want := next(t, lines, "token "), "token sha256 "+fingerprint("second-token"); l != want {
		t.Fatalf("after a replace: %q, want %q", l, want)
	}
	if l := next(t, lines, "reading:"); !strings.HasSuffix(l, fingerprint("second-token")) {
		t.Errorf("tick %q does not name the current token", l)
	}
	replace(t, path, "# token withdrawn: the control plane refused the session (403)\n")
	if l := next(t, lines, "token "); l != "token withdrawn" {
		t.Fatalf("after a withdrawal: %q, want \"token withdrawn\"", l)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if l := next(t, lines, "token "); l != "token gone from "+path {
		t.Errorf("after a removal: %q", l)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	next(t, lines, "done: ")
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGUSR1: %v, want exit 0", err)
	}
}

// TestReaderStartsWithoutToken: with no file the first line says so, and
// SIGTERM ends the reader at once with status 0.
func TestReaderStartsWithoutToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	cmd, lines := reader(t, path)
	if l := next(t, lines, "start:"); !strings.HasSuffix(l, "no token at "+path) {
		t.Fatalf("start line %q", l)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next(t, lines, "stopping: TERM")
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
}

// TestSidecarEndsOnTERM: the stand-in sidecar ends at once on SIGTERM, as
// a pod's deletion needs.
func TestSidecarEndsOnTERM(t *testing.T) {
	cmd := exec.Command("sh", "sidecar.sh")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := bufio.NewScanner(out)
	if !s.Scan() || s.Text() != "sidecar: up" {
		t.Fatalf("first line %q, want \"sidecar: up\"", s.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !s.Scan() || s.Text() != "stopping: TERM" {
		t.Errorf("after SIGTERM %q", s.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
}
