package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/test/testkit"
	"golang.org/x/sys/unix"
)

// childModeEnv selects what the child of childEnv (exec_test.go) does
// before, or instead of, the default; the names are outside tokend's
// prefixes, so tokend passes them on.
//
//   - "group": start a grandchild in the child's process group
//     ($EXEC_TEST_GRANDCHILD: "stubborn" or "polite"), report "grandchild
//     PID" once it handles signals, then go on as the default child;
//   - "stubborn", "polite": print "ready" once SIGTERM and SIGINT are
//     handled, then nothing more; stubborn ignores them, polite exits 0;
//   - "tty": report "tty PID", read a line of stdin, report "got LINE",
//     then go on as the default child;
//   - "orphan": start a process that exits when its stdin ends, and exit
//     at once, orphaning it (an --on-change program);
//   - "probe": report what it can read of its parent's (tokend's) secrets
//     in /proc: "probe UID environ=V cmdline=V mem=V", V being "denied",
//     "clean" or "LEAK"; the secrets to look for are the lines of the file
//     $EXEC_TEST_SECRETS. It never prints a secret.
const (
	childModeEnv  = "EXEC_TEST_MODE"
	grandchildEnv = "EXEC_TEST_GRANDCHILD"
	secretsEnv    = "EXEC_TEST_SECRETS"
)

func childMode(mode string) {
	switch mode {
	case "group":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childModeEnv+"="+os.Getenv(grandchildEnv))
		out, err := cmd.StdoutPipe()
		if err != nil || cmd.Start() != nil {
			os.Exit(97)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			os.Exit(96)
		}
		fmt.Printf("grandchild %d\n", cmd.Process.Pid)
	case "stubborn", "polite":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		for range sigs {
			if mode == "polite" {
				os.Exit(0)
			}
		}
	case "tty":
		fmt.Printf("tty %d\n", os.Getpid())
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			os.Exit(95)
		}
		fmt.Printf("got %s", line)
	case "orphan":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childModeEnv+"=linger")
		if _, err := cmd.StdinPipe(); err != nil || cmd.Start() != nil {
			os.Exit(94)
		}
		os.Exit(0)
	case "linger":
		bufio.NewReader(os.Stdin).ReadString(0)
		os.Exit(0)
	case "probe":
		probe()
		os.Exit(0)
	}
}

// probe reports what this process can read of its parent's secrets.
func probe() {
	data, _ := os.ReadFile(os.Getenv(secretsEnv))
	secrets := strings.Fields(string(data))
	verdict := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return "denied"
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				return "LEAK"
			}
		}
		return "clean"
	}
	dir := fmt.Sprintf("/proc/%d/", os.Getppid())
	mem := "denied"
	if f, err := os.Open(dir + "mem"); err == nil {
		f.Close()
		mem = "LEAK" // the whole of tokend's memory is open to this process
	}
	fmt.Printf("probe %d environ=%s cmdline=%s mem=%s\n", os.Getuid(), verdict(dir+"environ"), verdict(dir+"cmdline"), mem)
}

// until waits for the next child event of kind, skipping the "signal"
// events of children being stopped (a SIGKILL may come before them).
func (p *execProcess) until(t *testing.T, kind string) []string {
	t.Helper()
	for {
		ev := p.next(t, kind, "signal")
		if ev[0] == kind {
			return ev
		}
	}
}

func pidIn(t *testing.T, ev []string) int {
	t.Helper()
	pid, err := strconv.Atoi(ev[1])
	if err != nil {
		t.Fatalf("event %q: %v", ev, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // when the test fails
	return pid
}

// TestExecRestartEndsTheWholeGroup (issue 21, case 6): a process of the
// child's group that ignores SIGTERM is killed once the grace period is
// over, though the child itself exited at once: nothing survives the
// restarts or tokend's exit.
func TestExecRestartEndsTheWholeGroup(t *testing.T) {
	h := newRotatingHarness(t)
	h.env[childModeEnv], h.env[grandchildEnv] = "group", "stubborn"
	sock := refreshsock.DefaultPath(h.file)
	p := startExec(t, h, "--change-policy", "restart", "--grace-period", "100ms", "--refresh-socket", sock)
	members := []int{pidIn(t, p.until(t, "grandchild"))}
	p.until(t, "start")
	for range 2 {
		if code, out := refresh(t, h, sock); code != 0 {
			t.Fatalf("tokend refresh: %d %q", code, out)
		}
		next := pidIn(t, p.until(t, "grandchild")) // the restarted child's
		p.until(t, "start")
		testkit.AwaitExit(t, members[len(members)-1])
		members = append(members, next)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t); code != 64+15 && code != 128+9 {
		t.Errorf("tokend exec exited %d, want the child's %d (or %d when the SIGKILL came first)\n%s", code, 64+15, 128+9, p.stderr.String())
	}
	for _, pid := range members {
		testkit.AwaitExit(t, pid)
	}
}

// TestExecStopsReachTheWholeGroup (issue 21, cases 6 and 9): a forwarded
// SIGTERM or SIGINT goes where a restart's stop goes, to the child's whole
// group: with an hour's grace period, only the signal can end the polite
// grandchild before tokend exits. A child that ignores the signal is
// killed after the grace period, and tokend exits.
func TestExecStopsReachTheWholeGroup(t *testing.T) {
	for _, tc := range []struct {
		name, mode, grace string
		sig               syscall.Signal
		want              int
	}{
		{"SIGTERM", "group", "1h", syscall.SIGTERM, 64 + 15},
		{"SIGINT", "group", "1h", syscall.SIGINT, 64 + 2},
		{"child ignores SIGTERM", "stubborn", "100ms", syscall.SIGTERM, 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.env[childModeEnv], h.env[grandchildEnv] = tc.mode, "polite"
			p := startExec(t, h, "--grace-period", tc.grace)
			member := 0
			if tc.mode == "group" {
				member = pidIn(t, p.next(t, "grandchild"))
				p.next(t, "start")
			} else {
				p.next(t, "ready")
			}
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if code := p.exit(t); code != tc.want {
				t.Errorf("tokend exec exited %d, want %d\n%s", code, tc.want, p.stderr.String())
			}
			if member != 0 {
				testkit.AwaitExit(t, member)
			}
		})
	}
}

// openPTY returns a pseudo-terminal's two ends, echo off.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// foreground returns the foreground process group of pid's terminal
// (field tpgid of /proc/<pid>/stat).
func foreground(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	tpgid, err := strconv.Atoi(f[5])
	if err != nil {
		t.Fatalf("stat %q: %v", s, err)
	}
	return tpgid
}

// TestExecChildReadsTheTerminal (issue 21, case 8): tokend started in the
// foreground of a terminal gives the foreground to its child's group, at
// every start, so that a child that reads the terminal reads it instead of
// being stopped by SIGTTIN (and tokend hanging).
func TestExecChildReadsTheTerminal(t *testing.T) {
	h := newRotatingHarness(t)
	h.env[childModeEnv] = "tty"
	master, slave := openPTY(t)
	sock := refreshsock.DefaultPath(h.file)
	cmd := exec.Command(binary(t), "exec", "--change-policy", "restart", "--refresh-socket", sock, "--", os.Args[0])
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), childEnv + "=1"}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &testkit.Buffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, stderr
	// A session of its own, the terminal its controlling terminal: tokend
	// is in the terminal's foreground, as when started from a shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.WaitDelay = time.Second // see startExec
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	p := &execProcess{process: watchProcess(t, cmd, stderr), events: make(chan []string, 16)}
	go func() {
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			p.events <- strings.Fields(strings.TrimRight(sc.Text(), "\r"))
		}
	}()
	for i, line := range []string{"one", "two"} {
		if i > 0 {
			if code, out := refresh(t, h, sock); code != 0 {
				t.Fatalf("tokend refresh: %d %q", code, out)
			}
		}
		child := pidIn(t, p.until(t, "tty"))
		if fg := foreground(t, cmd.Process.Pid); fg != child {
			t.Errorf("start %d: the terminal's foreground group is %d, want the child's %d", i+1, fg, child)
		}
		if _, err := master.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
		if ev := p.next(t, "got"); len(ev) != 2 || ev[1] != line {
			t.Errorf("child read %q, want %q", ev, line)
		}
		p.next(t, "start")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t); code != 64+15 {
		t.Errorf("tokend exec exited %d, want %d\n%s", code, 64+15, stderr.String())
	}
}

// needRoot skips a test that needs root's capabilities.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s; run the tests as root to cover it", why)
	}
}

// count waits until text occurs n times in out.
func count(t *testing.T, out *testkit.Buffer, text string, n int, stop <-chan error) {
	t.Helper()
	out.WaitFor(t, fmt.Sprintf("%d lines with %q", n, text), stop, func(s string) bool { return strings.Count(s, text) >= n })
}

// TestRunAsPID1ReapsOrphans (issue 21, case 10): tokend run as the PID 1
// of a process namespace reaps what its --on-change program leaves behind:
// five changes, five orphans reaped, no zombie.
func TestRunAsPID1ReapsOrphans(t *testing.T) {
	needRoot(t, "start tokend as PID 1 of a new process namespace")
	h := newRotatingHarness(t)
	h.env[childEnv], h.env[childModeEnv] = "1", "orphan"
	sock := refreshsock.DefaultPath(h.file)
	cmd := exec.Command(binary(t), "run", "--on-change", `["`+os.Args[0]+`"]`, "--refresh-socket", sock)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	cmd.WaitDelay = time.Second // see startExec
	stderr := &testkit.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process in a new process namespace: %v", err)
	}
	p := watchProcess(t, cmd, stderr)
	stderr.WaitForText(t, "refresh socket listening", p.exited)
	for i := 1; i <= 5; i++ {
		if code, out := refresh(t, h, sock); code != 0 {
			t.Fatalf("tokend refresh: %d %q", code, out)
		}
		count(t, stderr, "token change notified", i, p.exited)
	}
	count(t, stderr, "reaped an orphan process", 5, p.exited)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", cmd.Process.Pid))
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		for _, pid := range strings.Fields(string(data)) {
			if n, _ := strconv.Atoi(pid); !testkit.Alive(n) {
				t.Errorf("tokend's child %s is a zombie", pid)
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("tokend run exited %d\n%s", code, stderr.String())
	}
}

// startConsumer starts the default child as a consumer of --notify-pid-file
// and returns its pid once it handles SIGHUP, and its events.
func startConsumer(t *testing.T) (int, *execProcess) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{childEnv + "=1"}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c := &execProcess{process: watchProcess(t, cmd, nil), events: make(chan []string, 16)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.events <- strings.Fields(sc.Text())
		}
		r.Close()
	}()
	c.next(t, "start")
	return cmd.Process.Pid, c
}

// TestRunRetriesAStalePIDFile (issue 21, case 12): the pid file names a
// process that is gone when the change lands, and the consumer writes its
// new pid a moment later: the signal reaches it then.
func TestRunRetriesAStalePIDFile(t *testing.T) {
	h := newRotatingHarness(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	pidFile, sock := filepath.Join(h.dir, "consumer.pid"), refreshsock.DefaultPath(h.file)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, h, "run", "--notify-pid-file", pidFile, "--notify-signal", "SIGHUP", "--refresh-socket", sock)
	p.stderr.WaitForText(t, "refresh socket listening", p.exited)
	if code, out := refresh(t, h, sock); code != 0 {
		t.Fatalf("tokend refresh: %d %q", code, out)
	}
	log := p.stderr.WaitFor(t, "the notification to fail", p.exited, func(s string) bool {
		return strings.Contains(s, "not delivered yet; retrying") || strings.Contains(s, "notification failed")
	})
	if !strings.Contains(log, "retrying") {
		t.Fatalf("the notification was given up at once:\n%s", log)
	}
	pid, consumer := startConsumer(t)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if ev := consumer.next(t, "signal"); ev[1] != "hangup" {
		t.Errorf("consumer got %q, want hangup", ev)
	}
}

// TestRunRefusesItsOwnPID (issue 21, case 13): a pid file naming tokend
// itself, with --notify-signal SIGHUP, would make every change a refresh
// and every refresh a change, without end; it is refused with an error
// that says so, and no signal is sent.
func TestRunRefusesItsOwnPID(t *testing.T) {
	h := newRotatingHarness(t)
	pidFile, sock := filepath.Join(h.dir, "consumer.pid"), refreshsock.DefaultPath(h.file)
	p := start(t, h, "run", "--notify-pid-file", pidFile, "--notify-signal", "SIGHUP", "--refresh-socket", sock)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(p.cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.stderr.WaitForText(t, "refresh socket listening", p.exited)
	if code, out := refresh(t, h, sock); code != 0 {
		t.Fatalf("tokend refresh: %d %q", code, out)
	}
	log := p.stderr.WaitForText(t, "names tokend itself", p.exited)
	if strings.Contains(log, "refreshing now on signal") {
		t.Errorf("tokend signalled itself:\n%s", log)
	}
}

// TestExecChildCannotReadTheSecrets (issue 21, case 7): the child of
// tokend exec, run under tokend's own unprivileged uid (the strongest
// case: another uid is refused anyway), can read none of tokend's secrets
// through /proc: not its environment, not its memory; its command line
// holds none.
func TestExecChildCannotReadTheSecrets(t *testing.T) {
	needRoot(t, "run tokend and its child as an unprivileged uid")
	const uid = 65534
	h := newHarness(t)
	// Both binaries where the unprivileged uid may run them, and a token
	// directory it may write.
	bin := t.TempDir()
	for _, d := range []string{filepath.Dir(bin), bin, filepath.Dir(h.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(h.dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	tokend, child := filepath.Join(bin, "tokend"), filepath.Join(bin, "child")
	for src, dst := range map[string]string{binary(t): tokend, os.Args[0]: child} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secrets := filepath.Join(bin, "secrets")
	keyLine := strings.Split(testkit.PublicKeyPEM(), "\n")[1]
	if err := os.WriteFile(secrets, []byte(sessionID+"\n"+h.env["AMBIENT_CP_TOKEN_PUBLIC_KEY"][:40]+"\n"+keyLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tokend, "exec", "--", child)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), childEnv + "=1", childModeEnv + "=probe", secretsEnv + "=" + secrets}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.WaitDelay = time.Second // see startExec
	stderr := &testkit.Buffer{}
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := watchProcess(t, cmd, stderr)
	if code := p.exit(t); code != 0 {
		t.Fatalf("tokend exec exited %d\n%s", code, stderr.String())
	}
	if got, want := strings.TrimSpace(out.String()), fmt.Sprintf("probe %d environ=denied cmdline=clean mem=denied", uid); got != want {
		t.Errorf("the child found %q, want %q", got, want)
	}
}
