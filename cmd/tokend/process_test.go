package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/test/testkit"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds tokend once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokend-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tokend")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// process is tokend running as a real child process.
type process struct {
	cmd    *exec.Cmd
	stderr *testkit.Buffer
	// exited is closed once the process has exited and err is set.
	exited chan error
	err    error
}

func start(t *testing.T, h *harness, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return watchProcess(t, cmd, stderr)
}

// watchProcess follows cmd, already started, until it exits; stderr is
// what the test reads of its log (nil when the test reads it otherwise).
// The test's cleanup kills it.
func watchProcess(t *testing.T, cmd *exec.Cmd, stderr *testkit.Buffer) *process {
	if stderr == nil {
		stderr = &testkit.Buffer{}
	}
	p := &process{cmd: cmd, stderr: stderr, exited: make(chan error)}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// startPiped starts cmd (tokend run, perhaps behind a shell) with h's
// environment and JSON logs on a pipe the test holds, and reads the log up
// to the health server's address. It returns the process, that address,
// and the log's reader, positioned after that line; the test closes r.
func startPiped(t *testing.T, h *harness, cmd *exec.Cmd) (p *process, addr string, lines *bufio.Scanner, r *os.File) {
	t.Helper()
	h.env["LOG_FORMAT"] = "json"
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // the child holds the only writing end
	p = watchProcess(t, cmd, nil)
	lines = bufio.NewScanner(r)
	for addr == "" && lines.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &line) == nil && line.Msg == "health server listening" {
			addr = line.Addr
		}
	}
	if addr == "" {
		r.Close()
		t.Fatalf("no health address logged (%v)", lines.Err())
	}
	return p, addr, lines, r
}

// exit waits for the process and returns its exit status.
func (p *process) exit(t *testing.T) int {
	t.Helper()
	testkit.Await(t, "tokend to exit", p.exited)
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func TestProcessRunStopsCleanlyOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			h := newHarness(t)
			h.env["LOG_FORMAT"] = "json"
			p := start(t, h, "run")
			addr := healthAddrIn(t, p.stderr, p.exited)
			// The probes learn of the token before the line is logged.
			p.stderr.WaitForText(t, `"msg":"token updated"`, p.exited)
			mustGet(t, addr, "/startupz", 200)
			mustGet(t, addr, "/readyz", 200)
			metrics := mustGet(t, addr, "/metrics", 200)
			for _, m := range []string{`tokend_exchanges_total{code="200",result="success"} 1`, `tokend_file_writes_total{result="written"} 1`, "tokend_token_expiry_timestamp_seconds", "tokend_build_info{"} {
				if !strings.Contains(metrics, m) {
					t.Errorf("metrics lack %q", m)
				}
			}
			if h.token() != h.iss.Current() {
				t.Fatal("token file does not hold the issued token")
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := p.exit(t); code != 0 {
				t.Fatalf("exit %d after %v, want 0\n%s", code, sig, p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
				t.Errorf("no clean-stop line:\n%s", p.stderr.String())
			}
			if h.token() != h.iss.Current() {
				t.Error("token file changed by the shutdown")
			}
			h.stderr.Write([]byte(p.stderr.String()))
			h.assertNoSecrets(h.iss.Current())
		})
	}
}

func TestProcessExitCodes(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{name: "init ok", args: []string{"init"}, code: 0},
		{name: "check ok", args: []string{"check"}, code: 0},
		{name: "version", args: []string{"version"}, code: 0},
		{name: "init bad config", env: map[string]string{"AMBIENT_CP_TOKEN_URL": "ftp://x"}, args: []string{"init"}, code: 2, want: "AMBIENT_CP_TOKEN_URL"},
		{name: "init forbidden", env: map[string]string{"SESSION_ID": "not-a-session-the-cp-knows"}, args: []string{"init"}, code: 1, want: "403"},
		{name: "check missing", env: map[string]string{"TOKEND_TOKEN_FILE": filepath.Join(h.dir, "absent")}, args: []string{"check"}, code: 1, want: "no such file"},
		{name: "no command", code: 2, want: "Usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "init forbidden" {
				h.iss.Push(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "forbidden", 403) })
			}
			saved := map[string]string{}
			for k, v := range tt.env {
				saved[k] = h.env[k]
				h.env[k] = v
			}
			defer func() {
				for k, v := range saved {
					h.env[k] = v
				}
			}()
			p := start(t, h, tt.args...)
			if code := p.exit(t); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, p.stderr.String())
			}
			for _, s := range []string{sessionID, h.env["SESSION_ID"], h.iss.Current()} {
				if s != "" && strings.Contains(p.stderr.String(), s) {
					t.Fatal("stderr leaks a secret")
				}
			}
		})
	}
}
