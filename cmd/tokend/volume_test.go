package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// The volume faults (full, read-only) need a volume of their own: a
// size-limited tmpfs in a private mount namespace, which only root can
// make. The test binary re-executes itself as a helper inside the new
// namespace: the helper mounts the tmpfs, runs tokend on it, and remounts
// it read-only or read-write when told so on stdin. The test reaches the
// volume through /proc/<helper>/root.
const (
	helperEnv     = "TOKEND_TEST_MOUNT_HELPER" // the volume's directory
	helperSizeEnv = "TOKEND_TEST_MOUNT_SIZE"
	helperArgsEnv = "TOKEND_TEST_MOUNT_ARGS" // tokend's path and arguments, separated by \x1f
)

func init() {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(mountHelper(dir))
	}
}

// mountHelper is the test binary's other life; see above. It answers each
// command on stdin ("ro", "rw") with a line on stdout, stops tokend with
// SIGTERM when stdin closes, and exits with tokend's status.
func mountHelper(dir string) int {
	opts := "size=" + os.Getenv(helperSizeEnv) + ",mode=0755"
	if err := syscall.Mount("tokend-test", dir, "tmpfs", 0, opts); err != nil {
		fmt.Fprintln(os.Stderr, "mount helper: mounting tmpfs:", err)
		return 111
	}
	args := strings.Split(os.Getenv(helperArgsEnv), "\x1f")
	cmd := exec.Command(args[0], args[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKEND_TEST_MOUNT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "mount helper:", err)
		return 111
	}
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			flags := uintptr(syscall.MS_REMOUNT)
			if in.Text() == "ro" {
				flags |= syscall.MS_RDONLY
			}
			var err error
			for range 50 { // EBUSY while a write is in progress
				if err = syscall.Mount("tokend-test", dir, "tmpfs", flags, opts); !errors.Is(err, syscall.EBUSY) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			fmt.Println("done", err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 111
	}
	return 0
}

// volume is tokend running on its own tmpfs through the helper.
type volume struct {
	helper  *exec.Cmd
	stdin   io.WriteCloser
	replies *bufio.Scanner
	root    string // the tmpfs, as the test reaches it
	stderr  *testkit.Buffer
	done    chan error
}

func startOnVolume(t *testing.T, h *harness, size string, args ...string) *volume {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the full and read-only volume tests need root, to mount a size-limited tmpfs in a private mount namespace (CI runs as root)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "vol")
	must(t, os.Mkdir(dir, 0o755))
	h.file = filepath.Join(dir, "token")
	h.env["TOKEND_TOKEN_FILE"] = h.file
	cmd := exec.Command(self)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), helperEnv + "=" + dir, helperSizeEnv + "=" + size,
		helperArgsEnv + "=" + strings.Join(append([]string{binary(t)}, args...), "\x1f")}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true}
	v := &volume{helper: cmd, stderr: &testkit.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = v.stderr
	v.stdin, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	v.replies = bufio.NewScanner(out)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("skipped: cannot create a mount namespace here: %v", err)
		}
		t.Fatal(err)
	}
	go func() { v.done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the helper's group: it and tokend
		<-v.done
	})
	v.root = fmt.Sprintf("/proc/%d/root%s", cmd.Process.Pid, dir)
	return v
}

// remount tells the helper to remount the volume "ro" or "rw".
func (v *volume) remount(t *testing.T, mode string) {
	t.Helper()
	fmt.Fprintln(v.stdin, mode)
	if !v.replies.Scan() || v.replies.Text() != "done <nil>" {
		t.Fatalf("remount %s: %q\n%s", mode, v.replies.Text(), v.stderr.String())
	}
}

// stop closes the helper's stdin, which stops tokend with SIGTERM, and
// returns the exit status.
func (v *volume) stop(t *testing.T) int {
	t.Helper()
	v.stdin.Close()
	err := testkit.Await(t, "tokend to stop", v.done)
	v.done <- err
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// TestRunVolumeFaults: a full volume and a read-only one, under `tokend
// run` as a real process.
func TestRunVolumeFaults(t *testing.T) {
	var wg sync.WaitGroup
	for _, name := range []string{"full volume", "read-only volume"} {
		wg.Go(func() { t.Run(name, func(t *testing.T) { volumeFault(t, name) }) })
	}
	wg.Wait()
}

func volumeFault(t *testing.T, name string) {
	h := newRotatingHarness(t)
	h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // the refresher's 500 ms floor
	h.env["TOKEND_MAX_BACKOFF"] = "150ms"
	v := startOnVolume(t, h, "256k", "run")
	filler := filepath.Join(v.root, "filler")
	faults := map[string]diskFault{
		"full volume": {
			inject: func(t *testing.T) { fill(t, filler) },
			heal:   func(t *testing.T) { must(t, os.Remove(filler)) },
			want:   "no space left on device",
		},
		"read-only volume": {
			inject: func(t *testing.T) { v.remount(t, "ro") },
			heal:   func(t *testing.T) { v.remount(t, "rw") },
			want:   "read-only file system",
		},
	}
	f := faults[name]
	f.keepsOld = true
	// The helper's exit ends every wait; a helper that could not mount
	// skips the test.
	exited := make(chan error)
	go func() {
		err := <-v.done
		v.done <- err
		close(exited)
	}()
	const mountFailed = "mount helper: mounting tmpfs"
	out := v.stderr.WaitFor(t, "the health server's address", exited, func(s string) bool {
		return strings.Contains(s, mountFailed) || healthAddrRE.MatchString(s)
	})
	if strings.Contains(out, mountFailed) {
		t.Skipf("skipped: cannot mount a tmpfs here:\n%s", out)
	}
	addr := healthAddrRE.FindStringSubmatch(out)[1]
	path := filepath.Join(v.root, "token")
	runDiskFault(t, diskWorld{path: path, addr: addr, stop: exited, logs: v.stderr}, f)
	last, _ := os.ReadFile(path)
	if code := v.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, v.stderr.String())
	}
	h.stderr.Write([]byte(v.stderr.String()))
	h.assertNoSecrets(string(last), h.iss.Current())
}

// fill writes to path until the volume is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
