package daemon_test

import (
	"bufio"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/refreshsock"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// TestExecChildIsToldAsTheNotifiersAre: under exec, the child's
// --change-policy is one notifier among the others. A token change made
// through the refresh socket reaches the child (SIGHUP, --change-policy
// signal) and the --notify-signal consumer (SIGUSR2 to a consumer that relays it here) once
// each, and the one metric of notifications counts both.
func TestExecChildIsToldAsTheNotifiersAre(t *testing.T) {
	cfg, dir := encryptedWorld(t)
	cfg.Command, cfg.HealthAddr = "exec", "127.0.0.1:0"
	t.Setenv(benchChildEnv, "1") // the child inherits tokend's environment
	usr2 := make(chan os.Signal, 4)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	pidFile, sock := filepath.Join(dir, "app.pid"), filepath.Join(dir, ".tokend.sock")
	t.Setenv("TOKEND_TEST_PARENT", strconv.Itoa(os.Getpid()))
	startRelay(t, pidFile) // relays its SIGUSR2 here; tokend refuses its own pid
	cfg.Exec.Policy, cfg.Exec.Argv = child.PolicySignal, []string{os.Args[0]}
	cfg.Consumers.NotifySignal, cfg.Consumers.NotifyPIDFile = syscall.SIGUSR2, pidFile
	cfg.Consumers.RefreshSocket = sock
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lines := make(chan string, 16)
	go func() {
		for sc := bufio.NewScanner(r); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	log := &events{ch: make(chan string, 256)}
	addr := make(chan net.Addr, 1)
	observe := func(e daemonevents.Event) {
		if e.Kind == daemonevents.HealthListening {
			addr <- e.Addr
		}
	}
	sigs := make(chan os.Signal, 1)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := daemon.Exec(t.Context(), cfg, daemonevents.Observe(daemon.Deps{Logger: slog.New(log)}, observe),
			daemon.ExecDeps{Signals: sigs, Stdout: w, Stderr: os.Stderr})
		done <- result{code, err}
	}()
	if l := testkit.Await(t, "the child to start", lines); l != "start" {
		t.Fatalf("child printed %q, want start", l)
	}
	resp, err := refreshsock.Request(t.Context(), sock)
	if err != nil || !resp.Changed {
		t.Fatalf("refresh: %+v, %v", resp, err)
	}
	if l := testkit.Await(t, "the child's SIGHUP", lines); l != "signal hangup" {
		t.Fatalf("child printed %q, want signal hangup", l)
	}
	testkit.Await(t, "the consumer's SIGUSR2", usr2)
	for range 2 {
		await(t, log.ch, "both notifications counted", func(l string) bool { return strings.HasPrefix(l, "token change notified") })
	}
	metrics := get(t, "http://"+testkit.Await(t, "the health server", addr).String()+"/metrics")
	for _, want := range []string{`tokend_notifications_total{notifier="exec",result="success"} 1`, `tokend_notifications_total{notifier="signal",result="success"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	sigs <- syscall.SIGTERM
	res := testkit.Await(t, "Exec to return", done)
	if res.err != nil || res.code != 0 {
		t.Errorf("Exec: code %d, %v; want the child's 0", res.code, res.err)
	}
	w.Close()
}
