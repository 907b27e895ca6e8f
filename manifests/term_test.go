package manifests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// guard bounds every wait of these tests. It only ends a test that would
// otherwise hang; nothing is judged by how long a step took.
const guard = 2 * time.Minute

// TestConsumersEndOnSIGTERM runs the script of every example consumer as
// its container does, as PID 1 of a PID namespace of its own, where a
// signal without a handler is ignored. Each sleep is stretched to a day, so
// only the TERM trap can end the script: once it has printed its first
// line, it gets SIGTERM and must exit with status 0.
func TestConsumersEndOnSIGTERM(t *testing.T) {
	sh := newShell(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(upstream.Close)
	var ran int
	for _, l := range layouts {
		if l.kind == "" {
			continue
		}
		w := load(t, l)
		for _, c := range w.containers() {
			script, ok := shellScript(c)
			if !ok {
				continue
			}
			ran++
			t.Run(l.dir+"/"+c.Name, func(t *testing.T) {
				if first := firstCommand(script); !strings.HasPrefix(first, "trap ") || !strings.HasSuffix(first, " TERM") {
					t.Fatalf("the script's first command is %q: it must trap TERM before anything else", first)
				}
				dir := t.TempDir()
				for _, d := range []string{"ambient", "consumer"} {
					if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, "ambient", "token"), []byte("example-token\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				script = strings.ReplaceAll(script, "/var/run/", dir+"/")
				script = regexp.MustCompile(`\bsleep [0-9]+\b`).ReplaceAllString(script, "sleep 86400")
				var env []string
				for _, e := range c.Env {
					if e.Name == "AMBIENT_API_SERVER_URL" {
						e.Value = upstream.URL // the proxy's stand-in
					}
					env = append(env, e.Name+"="+e.Value)
				}
				p := sh.startPID1(t, script, env)
				t.Logf("first line: %s", p.line(t))
				p.signal(t, syscall.SIGTERM)
				if st := p.wait(t); !st.Exited() || st.ExitStatus() != 0 {
					t.Fatalf("after SIGTERM: %v, want exit status 0 (the trap)\n%s", st, p.output())
				}
			})
		}
	}
	if ran == 0 {
		t.Fatal("no example consumer runs a shell script")
	}
}

// TestPID1IgnoresSIGTERM is the control for the test above: as PID 1 of its
// namespace, a script without a TERM trap outlives SIGTERM (it still reads
// the line written after the signal), and as an ordinary process it dies of
// it. So the consumers' test fails for a consumer without its trap.
func TestPID1IgnoresSIGTERM(t *testing.T) {
	sh := newShell(t)
	const script = `echo ready; read x; echo "alive: $x"`

	p := sh.startPID1(t, script, nil)
	p.line(t)
	p.signal(t, syscall.SIGTERM)
	p.stdin.Write([]byte("after SIGTERM\n"))
	if got := p.line(t); got != "alive: after SIGTERM" {
		t.Fatalf("PID 1 printed %q after SIGTERM, want it alive", got)
	}
	if st := p.wait(t); !st.Exited() || st.ExitStatus() != 0 {
		t.Fatalf("PID 1: %v, want exit status 0", st)
	}

	p = sh.start(t, script, nil, nil)
	p.line(t)
	p.signal(t, syscall.SIGTERM)
	if st := p.wait(t); !st.Signaled() || st.Signal() != syscall.SIGTERM {
		t.Fatalf("an ordinary process: %v, want it killed by SIGTERM", st)
	}
}

// shellScript returns the script of a container that runs `/bin/sh -c`.
func shellScript(c *corev1.Container) (string, bool) {
	if len(c.Command) == 3 && c.Command[0] == "/bin/sh" && c.Command[1] == "-c" {
		return c.Command[2], true
	}
	return "", false
}

// firstCommand returns the script's first line that is not blank or a
// comment.
func firstCommand(script string) string {
	for line := range strings.Lines(script) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return ""
}

// shell runs scripts with busybox's sh and applets, as the busybox image
// does, or with the machine's /bin/sh where busybox is not installed.
type shell struct {
	path string
	env  []string // PATH
}

func newShell(t *testing.T) shell {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Logf("busybox is not installed (apt-get install busybox-static): running the scripts with /bin/sh")
		return shell{path: "/bin/sh", env: []string{"PATH=" + os.Getenv("PATH")}}
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	bin := t.TempDir()
	for _, applet := range strings.Fields(string(list)) {
		if err := os.Symlink(bb, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	return shell{path: filepath.Join(bin, "sh"), env: []string{"PATH=" + bin}}
}

// startPID1 starts the script as PID 1 of a new PID namespace (in a user
// namespace of its own when the test does not run as root).
func (sh shell) startPID1(t *testing.T, script string, env []string) *proc {
	t.Helper()
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if uid, gid := os.Getuid(), os.Getgid(); uid != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
	}
	return sh.start(t, script, env, attr)
}

// proc is a running script: its stdin, its stdout lines, its exit.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	out   strings.Builder // every line read, for failure messages
	done  chan struct{}   // closed when the process has exited
	state *os.ProcessState
}

func (sh shell) start(t *testing.T, script string, env []string, attr *syscall.SysProcAttr) *proc {
	t.Helper()
	cmd := exec.Command(sh.path, "-c", script)
	cmd.Env = append(append([]string{}, sh.env...), env...)
	cmd.SysProcAttr = attr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	p := &proc{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		if attr != nil && errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot make a PID namespace here: %v", err)
		}
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			p.lines <- s.Text()
		}
		r.Close()
		close(p.lines)
	}()
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p
}

// line returns the next line the script printed.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("the script ended its output without another line\n%s", p.output())
		}
		fmt.Fprintln(&p.out, l)
		return l
	case <-time.After(guard):
		t.Fatalf("no line from the script within %v\n%s", guard, p.output())
	}
	return ""
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait returns the script's exit status.
func (p *proc) wait(t *testing.T) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.done:
		return p.state.Sys().(syscall.WaitStatus)
	case <-time.After(guard):
		t.Fatalf("the script did not exit within %v\n%s", guard, p.output())
	}
	return 0
}

func (p *proc) output() string { return p.out.String() }
