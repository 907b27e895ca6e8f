package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// build compiles the command into the test's directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// start runs pause (in a PID namespace of its own with newPID) and returns
// once it handles signals: a signal sent earlier would meet the Go
// runtime's default action, not pause. The rest of its stderr goes to the
// returned channel.
func start(t *testing.T, newPID bool) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(build(t))
	if newPID {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 10)
	ready := make(chan struct{})
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if strings.HasSuffix(s.Text(), "waiting for SIGTERM") {
				close(ready)
				continue
			}
			lines <- s.Text()
		}
	}()
	select {
	case <-ready:
	case <-time.After(testkit.Patience):
		t.Fatal("pause never said it waits")
	}
	return cmd, lines
}

// TestExitsOnTERM: pause runs until SIGTERM (or SIGINT) and then exits 0,
// as a sandbox's teardown needs.
func TestExitsOnTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd, lines := start(t, false)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		var said []string
		for l := range lines {
			said = append(said, l)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: pause ended with %v, want exit 0; stderr: %q", sig, err, said)
		}
		if len(said) != 1 || !strings.Contains(said[0], "exiting") {
			t.Errorf("%v: stderr %q does not say it stops", sig, said)
		}
	}
}

// TestReapsOrphans: as PID 1 of a PID namespace (as in a pod sandbox), pause
// collects an orphan that the kernel reparents to it, so no zombie stays.
func TestReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, for a PID namespace")
	}
	cmd, lines := start(t, true)

	// A shell entered into pause's PID namespace starts a child and exits
	// at once: the kernel reparents the orphan to pause, the namespace's
	// first process, as the shell exits (so before nsenter, which waits
	// for it, returns). Killing it then leaves a zombie that only pause
	// can collect.
	sh := exec.Command("nsenter", "-t", strconv.Itoa(cmd.Process.Pid), "-p", "--", "sh", "-c", "sleep 1000 >/dev/null 2>&1 &")
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("nsenter into pause's PID namespace: %v\n%s", err, out)
	}
	orphan := childOf(t, cmd.Process.Pid)
	if orphan == 0 {
		t.Fatal("the orphan is not pause's child")
	}
	if err := syscall.Kill(orphan, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	said := testkit.Await(t, "pause to say it reaped the orphan", lines)
	if !strings.HasPrefix(said, "pause: reaped ") {
		t.Fatalf("pause said %q, want that it reaped the orphan", said)
	}
	if pid := childOf(t, cmd.Process.Pid); pid != 0 {
		t.Fatalf("pause still has child %d (a zombie) after reaping", pid)
	}
}

// childOf returns the pid of a child of parent (a zombie counts), or 0.
func childOf(t *testing.T, parent int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(parent) + "/task/" + strconv.Itoa(parent) + "/children")
	if err != nil {
		t.Fatalf("reading pause's children: %v", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(fields[0])
	return pid
}
