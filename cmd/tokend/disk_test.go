package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/refresher"
)

// diskFault is something that happens to the token's volume under a
// running daemon, and its cure.
type diskFault struct {
	name string
	// inject makes the fault; heal removes it.
	inject, heal func(t *testing.T)
	// want is in the logged error and the /readyz answer.
	want string
	// keepsOld: the old token must stay in the file throughout.
	keepsOld bool
}

// newRotatingHarness is a harness whose issuer mints a new token on every
// request. The issuer is configured before it serves: a child process's
// request is no synchronisation the race detector can see.
func newRotatingHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.srv.Close()
	h.iss.CacheFloor = -1
	h.srv = httptest.NewServer(h.iss)
	t.Cleanup(h.srv.Close)
	h.env["AMBIENT_CP_TOKEN_URL"] = h.srv.URL + "/token"
	return h
}

// diskWorld is what a disk-fault test sees of one running daemon.
type diskWorld struct {
	h      *harness
	path   string // the token file, as the test reaches it
	addr   string // the health server
	exited func() error
	logs   func() string
}

// runDiskFault drives one fault: with tokend rotating, make the fault and
// expect readiness to go false with a clear error while the old token
// stays (where the fault allows), run to stay up, and, once the fault is
// cured, the daemon to write a new token and be ready again by itself.
func runDiskFault(t *testing.T, w diskWorld, f diskFault) {
	t.Helper()
	read := func() string { b, _ := os.ReadFile(w.path); return string(b) }
	check := func(deadline time.Time) {
		t.Helper()
		if err := w.exited(); err != nil {
			t.Fatalf("run exited: %v\n%s", err, w.logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out\n%s", w.logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline := time.Now().Add(20 * time.Second)
	for code, _ := get(w.addr, "/readyz"); code != 200 || read() == ""; code, _ = get(w.addr, "/readyz") {
		check(deadline)
	}
	f.inject(t)
	old := read()
	for {
		code, body := get(w.addr, "/readyz")
		if f.keepsOld && read() != old {
			t.Fatalf("the token file changed under the fault")
		}
		// The refresher logs the failure just after readiness learns of it.
		if code == 503 && strings.Contains(body, "writing the token file failed") && strings.Contains(body, f.want) && strings.Contains(w.logs(), f.want) {
			break
		}
		check(deadline)
	}
	_, metrics := get(w.addr, "/metrics")
	if strings.Contains(metrics, `tokend_file_writes_total{result="failed"} 0`) {
		t.Errorf("the failed write is not counted")
	}
	if _, ready := get(w.addr, "/readyz"); old != "" && strings.Contains(ready+metrics, old) {
		t.Fatalf("a probe or the metrics show the token")
	}
	if code, _ := get(w.addr, "/livez"); code != 200 {
		t.Errorf("/livez %d: a disk fault is not a reason to restart", code)
	}
	f.heal(t)
	for code, _ := get(w.addr, "/readyz"); code != 200 || read() == old; code, _ = get(w.addr, "/readyz") {
		check(deadline)
	}
	if got := read(); !validJWT(got) {
		t.Fatalf("after recovery the token file does not hold an issued token")
	}
}

// TestRunDiskFaults covers the faults that need no privilege: the token's
// directory removed, and the token path replaced by a directory or by a
// symlink (which must never be written through).
func TestRunDiskFaults(t *testing.T) {
	var wg sync.WaitGroup
	for _, name := range []string{"directory removed", "target replaced by a directory", "target replaced by a symlink"} {
		wg.Go(func() { t.Run(name, func(t *testing.T) { inProcessDiskFault(t, name) }) })
	}
	wg.Wait()
}

func inProcessDiskFault(t *testing.T, name string) {
	h := newRotatingHarness(t)
	dir := filepath.Join(h.dir, "tokens")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.file = filepath.Join(dir, "token")
	h.env["TOKEND_TOKEN_FILE"] = h.file
	h.env["TOKEND_REFRESH_INTERVAL"] = "100ms" // the refresher's 500 ms floor
	h.env["TOKEND_MAX_BACKOFF"] = "150ms"
	decoy := filepath.Join(h.dir, "decoy")
	if err := os.WriteFile(decoy, []byte("decoy"), 0o600); err != nil {
		t.Fatal(err)
	}
	faults := map[string]diskFault{
		"directory removed": {
			inject: func(t *testing.T) { must(t, os.RemoveAll(dir)) },
			heal:   func(t *testing.T) { must(t, os.Mkdir(dir, 0o755)) },
			want:   "no such file or directory",
		},
		"target replaced by a directory": {
			inject: func(t *testing.T) { must(t, os.Remove(h.file)); must(t, os.Mkdir(h.file, 0o755)) },
			heal:   func(t *testing.T) { must(t, os.Remove(h.file)) },
			want:   "is a directory",
		},
		"target replaced by a symlink": {
			inject: func(t *testing.T) { must(t, os.Remove(h.file)); must(t, os.Symlink(decoy, h.file)) },
			heal:   func(t *testing.T) { must(t, os.Remove(h.file)) },
			want:   "is a symlink",
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()
	var exitErr error
	exited := func() error {
		select {
		case err := <-done:
			exitErr = fmt.Errorf("returned %v", err)
		default:
		}
		return exitErr
	}
	runDiskFault(t, diskWorld{h: h, path: h.file, addr: h.healthAddr(done), exited: exited, logs: h.stderr.String}, faults[name])
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if b, _ := os.ReadFile(decoy); string(b) != "decoy" {
		t.Errorf("the symlink's target was written through")
	}
	h.assertNoSecrets(h.token())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunRestoresARemovedTokenFile: a consumer deletes the token file
// between two refreshes of a long interval. run notices within
// refresher.DefaultVerifyEvery, says so, and writes a token again, without
// waiting for the next refresh.
func TestRunRestoresARemovedTokenFile(t *testing.T) {
	t.Parallel() // mostly waiting; overlaps the other slow test
	h := newHarness(t)
	h.env["TOKEND_REFRESH_INTERVAL"] = "1h"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx, "run") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	addr := h.healthAddr(done)
	first := h.waitFile(done, func(s string) bool { return s != "" })
	must(t, os.Remove(h.file))
	removed := time.Now()
	if code, _ := get(addr, "/readyz"); code != 503 {
		t.Errorf("/readyz %d with the token file gone", code)
	}
	if got := h.waitFile(done, func(s string) bool { return s != "" }); got != first || !validJWT(got) {
		t.Fatalf("the token file came back with another content")
	}
	if took := time.Since(removed); took > refresher.DefaultVerifyEvery+5*time.Second {
		t.Errorf("restored after %v, want within the %v check period (plus slack)", took, refresher.DefaultVerifyEvery)
	}
	waitUntil(t, 10*time.Second, func() bool { code, _ := get(addr, "/readyz"); return code == 200 })
	if !strings.Contains(h.stderr.String(), "token file lost, refreshing now") {
		t.Errorf("the loss was not logged")
	}
	h.assertNoSecrets(first)
}

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
	stderr  *syncBuffer
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
	v := &volume{helper: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
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
	select {
	case err := <-v.done:
		v.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(15 * time.Second):
		t.Fatalf("tokend did not stop\n%s", v.stderr.String())
		return -1
	}
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
	addr := freeAddr(t)
	h.env["TOKEND_HEALTH_ADDR"] = addr
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
	var exitErr error
	exited := func() error {
		select {
		case err := <-v.done:
			exitErr = fmt.Errorf("exited: %v", err)
		default:
		}
		return exitErr
	}
	path := filepath.Join(v.root, "token")
	deadline := time.Now().Add(20 * time.Second)
	for _, err := os.Stat(path); err != nil; _, err = os.Stat(path) {
		if exited() != nil && strings.Contains(v.stderr.String(), "mount helper: mounting tmpfs") {
			t.Skipf("skipped: cannot mount a tmpfs here:\n%s", v.stderr.String())
		}
		if exited() != nil || time.Now().After(deadline) {
			t.Fatalf("no token on the volume: %v\n%s", exited(), v.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	runDiskFault(t, diskWorld{h: h, path: path, addr: addr, exited: exited, logs: v.stderr.String}, f)
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
