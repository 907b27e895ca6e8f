// Package localrun tests scripts/local-run.sh, the README's first command,
// as a person runs it: the real script, the real build, and the three real
// processes it starts, stopped the ways a person stops them. Every run
// asks for free ports (CP_PORT=0, HEALTH_PORT=0) and keeps its binaries,
// token and logs in a temporary LOCAL_RUN_DIR, so runs do not meet.
package localrun

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// running is the script's line once tokend's first token is on disk.
const running = "tokend is running:"

// script is one run of scripts/local-run.sh, in a process group of its own
// as a terminal would give it.
type script struct {
	cmd  *exec.Cmd
	dir  string          // LOCAL_RUN_DIR
	out  testkit.Buffer  // stdout and stderr
	done chan error      // closed once the script has ended
	exit *exec.ExitError // how it ended, set before done is closed
}

// start runs the script with env added to a clean environment: none of
// tokend's settings, CP_PORT=0 and HEALTH_PORT=0 unless env sets them.
func start(t *testing.T, env ...string) *script {
	t.Helper()
	s := &script{dir: t.TempDir(), done: make(chan error)}
	s.cmd = exec.Command("scripts/local-run.sh")
	s.cmd.Dir = filepath.Join("..", "..")
	s.cmd.Env = append(cleanEnv(), "LOCAL_RUN_DIR="+s.dir, "CP_PORT=0", "HEALTH_PORT=0")
	s.cmd.Env = append(s.cmd.Env, env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		errors.As(s.cmd.Wait(), &s.exit)
		close(s.done)
	}()
	t.Cleanup(func() { s.cleanup(t) })
	return s
}

// cleanEnv is the test's environment without the settings of tokend, the
// control plane and the script, which would change what the script does.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TOKEND_"), strings.HasPrefix(name, "AMBIENT_"), strings.HasPrefix(name, "LOCAL_RUN_"),
			name == "SESSION_ID", name == "AUTH", name == "CP_PORT", name == "HEALTH_PORT", name == "DEMO_SECONDS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitFor waits until the output holds a line matching re.
func (s *script) waitFor(t *testing.T, what string, re *regexp.Regexp) {
	t.Helper()
	s.out.WaitFor(t, what, s.done, re.MatchString)
}

// status waits for the script to end and returns its exit status.
func (s *script) status(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(testkit.Patience):
		t.Fatalf("the script did not end within %v\n%s", testkit.Patience, s.out.String())
	}
	if s.exit == nil {
		return 0
	}
	return s.exit.ExitCode()
}

// signal sends sig to the script's whole process group (what Ctrl-C in a
// terminal does) or to the script alone.
func (s *script) signal(t *testing.T, sig syscall.Signal, group bool) {
	t.Helper()
	pid := s.cmd.Process.Pid
	if group {
		pid = -pid
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
}

// children returns the processes running a binary the script built, by
// name (tokend, fakecp, tokenwatch).
func (s *script) children(t *testing.T) map[string]int {
	t.Helper()
	bin := filepath.Join(s.dir, "bin") + string(filepath.Separator)
	procs, err := filepath.Glob("/proc/[0-9]*/exe")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, p := range procs {
		exe, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(exe, bin) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		found[strings.TrimPrefix(exe, bin)] = pid
	}
	return found
}

// cleanup ends whatever a failed test left running: the script, asked
// to stop its processes first, then any process it left.
func (s *script) cleanup(t *testing.T) {
	select {
	case <-s.done:
	default:
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(testkit.Patience):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	for name, pid := range s.children(t) {
		t.Errorf("%s (pid %d) outlived the script", name, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

var (
	tokenChange = regexp.MustCompile(`(?m)^\[app\] .* token changed fingerprint=[0-9a-f]{12} `)
	isRunning   = regexp.MustCompile(`(?m)^` + running)
)

// TestLocalRunStops stops a running local run the ways a person does, and
// checks that it ends with status 0, every process having stopped in
// order, for both exchanges (the bearer one once died with SIGPIPE at
// start).
func TestLocalRunStops(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		group bool // Ctrl-C: SIGINT to the whole group; else to the script alone
		sig   syscall.Signal
	}{
		{"Ctrl-C", nil, true, syscall.SIGINT},
		{"SIGINT to the script alone", nil, false, syscall.SIGINT},
		{"SIGTERM to the script", nil, false, syscall.SIGTERM},
		{"bearer, Ctrl-C", []string{"AUTH=bearer"}, true, syscall.SIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, tt.env...)
			s.waitFor(t, "the app's first token", tokenChange)
			s.waitFor(t, "the script to say tokend runs", isRunning)
			s.signal(t, tt.sig, tt.group)
			if code := s.status(t); code != 0 {
				t.Fatalf("exit status %d after %v, want 0\n%s", code, tt.sig, s.out.String())
			}
			out := s.out.String()
			for _, label := range []string{"[fakecp]", "[tokend]", "[app]"} {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `.*\bstopped\b`).MatchString(out) {
					t.Errorf("no %s line saying it stopped\n%s", label, out)
				}
			}
			if !strings.HasSuffix(out, "local run stopped; the last token stays in "+s.dir+"/token\n") {
				t.Errorf("the output does not end with the script's last line\n%s", out)
			}
		})
	}
}

// TestLocalRunChildDies kills one of the three processes, as a crash
// would: the script must stop the other two and fail, naming it.
func TestLocalRunChildDies(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.waitFor(t, "the script to say tokend runs", isRunning)
	pid, ok := s.children(t)["tokend"]
	if !ok {
		t.Fatalf("no tokend process running from %s\n%s", s.dir, s.out.String())
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := s.status(t); code != 1 {
		t.Fatalf("exit status %d after tokend was killed, want 1\n%s", code, s.out.String())
	}
	want := "local run: tokend (pid " + strconv.Itoa(pid) + ") exited early with status 137"
	if out := s.out.String(); !strings.Contains(out, want) {
		t.Errorf("output lacks %q\n%s", want, out)
	}
}

// TestLocalRunDemoSeconds runs the way CI does, with DEMO_SECONDS: the
// script ends by itself with status 0.
func TestLocalRunDemoSeconds(t *testing.T) {
	t.Parallel()
	s := start(t, "DEMO_SECONDS=0")
	if code := s.status(t); code != 0 {
		t.Fatalf("exit status %d, want 0\n%s", code, s.out.String())
	}
	out := s.out.String()
	for _, want := range []string{running, "DEMO_SECONDS=0 have passed."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
}

// TestLocalRunRefusesBeforeBuilding checks that a taken port and a bad
// setting stop the script before it builds anything (a build on a cold
// cache takes minutes), with a message that names the setting and the fix.
func TestLocalRunRefusesBeforeBuilding(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // after the parallel subtests
	taken := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		name string
		env  []string
		code int
		want []string
	}{
		{"fakecp's port taken", []string{"CP_PORT=" + taken}, 1,
			[]string{"port " + taken + " is taken", "CP_PORT=<port>"}},
		{"tokend's port taken", []string{"HEALTH_PORT=" + taken}, 1,
			[]string{"port " + taken + " is taken", "HEALTH_PORT=<port>"}},
		{"unknown exchange", []string{"AUTH=oauth"}, 2,
			[]string{"AUTH=oauth: unknown exchange", "AUTH=bearer"}},
		{"the old TOKEND_DEV_DIR", []string{"TOKEND_DEV_DIR=/tmp/x"}, 2,
			[]string{"TOKEND_DEV_DIR=/tmp/x: renamed", "set LOCAL_RUN_DIR instead"}},
		{"port not a number", []string{"CP_PORT=http"}, 2,
			[]string{"CP_PORT=http: not a port number", "0 for any free port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, tt.env...)
			if code := s.status(t); code != tt.code {
				t.Fatalf("exit status %d, want %d\n%s", code, tt.code, s.out.String())
			}
			out := s.out.String()
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q\n%s", want, out)
				}
			}
			if strings.Contains(out, "building") {
				t.Errorf("the script started the build\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "bin")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s/bin exists (%v): the script prepared a build", s.dir, err)
			}
		})
	}
}

// TestLocalRunStopsDuringTheBuild stops the script while it builds, which
// takes minutes on a cold cache: it must end the build and exit 0 at once,
// not after the build. The go command is one that announces itself and
// waits, so that the signal surely comes during the build.
func TestLocalRunStopsDuringTheBuild(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sig   syscall.Signal
		group bool
	}{
		{"Ctrl-C", syscall.SIGINT, true},
		{"SIGTERM to the script", syscall.SIGTERM, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := t.TempDir()
			pidFile := filepath.Join(fake, "pid")
			goCmd := "#!/bin/sh\necho $$ >" + pidFile + "\necho \"go $*: waiting\"\nexec sleep 3600\n"
			if err := os.WriteFile(filepath.Join(fake, "go"), []byte(goCmd), 0o755); err != nil {
				t.Fatal(err)
			}
			s := start(t, "PATH="+fake+string(filepath.ListSeparator)+os.Getenv("PATH"))
			s.waitFor(t, "the build to start", regexp.MustCompile(`(?m)^go build .*: waiting$`))
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			s.signal(t, tt.sig, tt.group)
			if code := s.status(t); code != 0 {
				t.Fatalf("exit status %d, want 0\n%s", code, s.out.String())
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("the build (pid %d) outlived the script: %v", pid, err)
			}
			if out := s.out.String(); strings.Contains(out, "built in") || !strings.Contains(out, "local run stopped") {
				t.Errorf("want the script stopped during the build\n%s", out)
			}
		})
	}
}
