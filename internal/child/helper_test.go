package child

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/secret"
)

// The test binary doubles as the child: with helperEnv set, TestMain runs
// helper instead of the tests. The helper reports on its stdout, one event
// a line: "start PID ENVFP FILEFP" (fingerprints of the token in $TEST_TOKEN
// and in $TOKEND_TOKEN_FILE), "signal NAME", "grandchild PID".
//
// Modes "group" and "leave" start a grandchild in the child's process
// group, "quiet-" plus $GRANDCHILD ("stubborn" ignores SIGTERM and SIGINT,
// "polite" exits on them; neither writes past its "ready"), and report it
// once it handles signals; "group" then serves, "leave" exits 0.
const helperEnv = "TOKEND_CHILD_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	if mode == "quiet-stubborn" || mode == "quiet-polite" {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println("ready")
		for range sigs {
			if mode == "quiet-polite" {
				return 0
			}
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	data, _ := os.ReadFile(os.Getenv("TOKEND_TOKEN_FILE"))
	fmt.Printf("start %d %s %s\n", os.Getpid(), secret.Fingerprint(os.Getenv("TEST_TOKEN")), secret.Fingerprint(string(data)))
	switch mode {
	case "exit":
		code, _ := strconv.Atoi(os.Getenv("HELPER_CODE"))
		return code
	case "middle": // start a grandchild and exit, orphaning it
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=serve")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			return 99
		}
		fmt.Printf("grandchild %d\n", cmd.Process.Pid)
		return 0
	case "group", "leave":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=quiet-"+os.Getenv("GRANDCHILD"))
		out, err := cmd.StdoutPipe()
		if err != nil || cmd.Start() != nil {
			return 97
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			return 96
		}
		fmt.Printf("grandchild %d\n", cmd.Process.Pid)
		if mode == "leave" {
			return 0
		}
	case "orphan": // run a middle process, then serve
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=middle")
		cmd.Stdout = os.Stdout
		if cmd.Run() != nil {
			return 98
		}
	}
	for sig := range sigs {
		fmt.Printf("signal %s\n", sig)
		if sig == syscall.SIGHUP || mode == "stubborn" {
			continue
		}
		return 64 + int(sig.(syscall.Signal)) // distinct from 128+sig
	}
	return 0
}

// harness runs a Supervisor over the helper and collects its events.
type harness struct {
	t       *testing.T
	sup     *Supervisor
	token   string // token file path
	events  chan []string
	ready   chan struct{}
	changes chan struct{}
	sigs    chan os.Signal
	result  chan [2]any // code, error

	mu       sync.Mutex // guards starting, started
	starting func()     // called at each start, when not nil
	started  int
}

func newHarness(t *testing.T, mode string, policy Policy, env ...string) *harness {
	t.Helper()
	h := &harness{t: t, token: t.TempDir() + "/token", events: make(chan []string, 64),
		ready: make(chan struct{}), changes: make(chan struct{}), sigs: make(chan os.Signal, 1), result: make(chan [2]any, 1)}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			h.events <- strings.Fields(sc.Text())
		}
	}()
	h.sup = &Supervisor{
		Argv: []string{os.Args[0], "-test.run=^$"},
		Env: func() ([]string, error) { // called at each start
			h.mu.Lock()
			h.started++
			if h.starting != nil {
				h.starting()
			}
			h.mu.Unlock()
			tok, err := os.ReadFile(h.token)
			return append(os.Environ(), append([]string{helperEnv + "=" + mode, "TOKEND_TOKEN_FILE=" + h.token, "TEST_TOKEN=" + string(tok)}, env...)...), err
		},
		Policy: policy, ReloadSignal: syscall.SIGHUP, Stdout: w, Stderr: os.Stderr,
		RestartBackoff: &backoff.ZeroBackOff{},
		Ready:          h.ready, Changes: h.changes, Signals: h.sigs,
	}
	t.Cleanup(func() { w.Close() })
	return h
}

// run starts Run; its result arrives on h.result.
func (h *harness) run(ctx context.Context) {
	go func() {
		code, err := h.sup.Run(ctx)
		h.result <- [2]any{code, err}
	}()
}

func (h *harness) write(tok string) {
	h.t.Helper()
	if err := os.WriteFile(h.token, []byte(tok), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// next waits for the next event and checks that it is of one of kinds.
func (h *harness) next(kinds ...string) []string {
	h.t.Helper()
	select {
	case ev := <-h.events:
		if len(ev) == 0 || !slices.Contains(kinds, ev[0]) {
			h.t.Fatalf("event %q, want %s", ev, kinds)
		}
		return ev
	case <-time.After(time.Minute): // deadlock guard only
		h.t.Fatalf("no %s event", kinds)
	}
	return nil
}

// wait waits for Run's result.
func (h *harness) wait() (int, error) {
	h.t.Helper()
	select {
	case res := <-h.result:
		err, _ := res[1].(error)
		return res[0].(int), err
	case <-time.After(time.Minute): // deadlock guard only
		h.t.Fatal("Run did not return")
	}
	return 0, nil
}

// starts is how many times the command was started.
func (h *harness) starts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started
}

// gone fails unless pid has been reaped: no /proc entry, not even a zombie.
func gone(t *testing.T, pid int) {
	t.Helper()
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		t.Errorf("process %d still exists (zombie or running): %s", pid, data)
	}
}

func pidOf(t *testing.T, ev []string) int {
	t.Helper()
	pid, err := strconv.Atoi(ev[1])
	if err != nil {
		t.Fatalf("event %q: %v", ev, err)
	}
	return pid
}
