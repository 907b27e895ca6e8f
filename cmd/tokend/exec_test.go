package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

// childEnv switches the test binary into the child that tokend exec runs:
// it reports "start ENVFP FILEFP SECRETS" on stdout (fingerprints of the
// token in $API_TOKEN and in the file, and whether it inherited
// SESSION_ID), then "signal NAME" for each signal, exiting 64+signal on
// SIGTERM or SIGINT.
const childEnv = "TOKENDTEST_EXEC_CHILD"

func init() {
	if os.Getenv(childEnv) == "" {
		return
	}
	childMode(os.Getenv(childModeEnv)) // hardening_test.go; returns for the default
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	data, _ := os.ReadFile(os.Getenv("TOKEND_TOKEN_FILE"))
	_, leaked := os.LookupEnv("SESSION_ID")
	fmt.Printf("start %s %s %v\n", secret.Fingerprint(os.Getenv("API_TOKEN")), secret.Fingerprint(string(data)), leaked)
	for sig := range sigs {
		fmt.Printf("signal %s\n", sig)
		if sig != syscall.SIGHUP {
			os.Exit(64 + int(sig.(syscall.Signal)))
		}
	}
}

// execProcess is `tokend exec` as a real process whose child reports on
// the events channel.
type execProcess struct {
	*process
	events chan []string
}

func startExec(t *testing.T, h *harness, flags ...string) *execProcess {
	t.Helper()
	args := append(append([]string{"exec"}, flags...), "--", os.Args[0])
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), childEnv + "=1"}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = w, stderr
	// A test that fails leaves tokend's child holding stderr when the
	// cleanup kills tokend: its Wait must not wait for that.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := &execProcess{process: watchProcess(t, cmd, stderr), events: make(chan []string, 16)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.events <- strings.Fields(sc.Text())
		}
		r.Close()
	}()
	return p
}

func (p *execProcess) next(t *testing.T, kinds ...string) []string {
	t.Helper()
	kind := strings.Join(kinds, " or ")
	select {
	case ev := <-p.events:
		if !slices.Contains(kinds, ev[0]) {
			t.Fatalf("child event %q, want %s\n%s", ev, kind, p.stderr.String())
		}
		return ev
	case <-p.exited:
		t.Fatalf("tokend exited (%v) before the child's %s event\n%s", p.err, kind, p.stderr.String())
	case <-time.After(time.Minute): // deadlock guard only
		t.Fatalf("no %s event\n%s", kind, p.stderr.String())
	}
	return nil
}

// refresh runs `tokend refresh` and returns its exit code and output.
func refresh(t *testing.T, h *harness, socket string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), "refresh", "--refresh-socket", socket)
	cmd.Env = []string{"TOKEND_TOKEN_FILE=" + h.file}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestExecRestartsOnRefreshRequestAndExitsWithTheChild(t *testing.T) {
	h := newRotatingHarness(t) // a new token at every exchange
	sock := refreshsock.DefaultPath(h.file)
	p := startExec(t, h, "--change-policy", "restart", "--token-env", "API_TOKEN", "--refresh-socket", sock, "--remove-on-exit")
	ev := p.next(t, "start")
	if fp := secret.Fingerprint(h.token()); ev[1] != fp || ev[2] != fp || ev[3] != "false" {
		t.Fatalf("child started with env token %s, file %s, SESSION_ID inherited %s; want %s, %s, false", ev[1], ev[2], ev[3], fp, fp)
	}
	for range 2 {
		code, out := refresh(t, h, sock)
		if code != 0 || !strings.HasPrefix(out, "ok: token ") || !strings.HasSuffix(out, " changed\n") {
			t.Fatalf("tokend refresh: %d %q\n%s", code, out, p.stderr.String())
		}
		fp := strings.Fields(out)[2]
		if ev := p.next(t, "signal"); ev[1] != "terminated" {
			t.Fatalf("old child got %q", ev)
		}
		if ev := p.next(t, "start"); ev[1] != fp || ev[2] != fp {
			t.Errorf("restarted child has env token %s, file %s; want %s from the refresh answer", ev[1], ev[2], fp)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.next(t, "signal")
	if code := p.exit(t); code != 64+int(syscall.SIGINT) {
		t.Errorf("tokend exec exited %d, want the child's %d\n%s", code, 64+int(syscall.SIGINT), p.stderr.String())
	}
	for _, path := range []string{h.file, sock} {
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", filepath.Base(path), err)
		}
	}
	h.stderr.Write([]byte(p.stderr.String()))
	h.assertNoSecrets()
	if code, out := refresh(t, h, sock); code != 1 || !strings.Contains(out, "is tokend running") {
		t.Errorf("refresh without tokend: %d %q", code, out)
	}
}

// TestExecEmptyHealthAddrDisablesProbes: TOKEND_HEALTH_ADDR set but empty
// disables the health server of exec, as it does for run, instead of
// falling back to the default port.
func TestExecEmptyHealthAddrDisablesProbes(t *testing.T) {
	h := newHarness(t)
	h.env["TOKEND_HEALTH_ADDR"] = ""
	p := startExec(t, h)
	p.next(t, "start")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.next(t, "signal")
	if code := p.exit(t); code != 64+int(syscall.SIGTERM) {
		t.Errorf("tokend exec exited %d, want the child's %d\n%s", code, 64+int(syscall.SIGTERM), p.stderr.String())
	}
	if out := p.stderr.String(); strings.Contains(out, "health server") {
		t.Errorf("TOKEND_HEALTH_ADDR= did not disable the health server:\n%s", out)
	}
}

// TestExecRefreshesOnSIGHUP: SIGHUP asks tokend exec for an exchange now,
// as it asks tokend run, instead of killing tokend (its default action)
// and leaving the command running without it.
func TestExecRefreshesOnSIGHUP(t *testing.T) {
	h := newRotatingHarness(t) // a new token at every exchange
	p := startExec(t, h, "--change-policy", "restart", "--token-env", "API_TOKEN")
	first := p.next(t, "start")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if ev := p.next(t, "signal"); ev[1] != "terminated" {
		t.Fatalf("child got %q, want the restart's SIGTERM", ev)
	}
	if ev := p.next(t, "start"); ev[1] == first[1] {
		t.Errorf("restarted child has the old token %s", ev[1])
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.next(t, "signal")
	if code := p.exit(t); code != 64+int(syscall.SIGTERM) {
		t.Errorf("tokend exec exited %d, want the child's %d\n%s", code, 64+int(syscall.SIGTERM), p.stderr.String())
	}
}
