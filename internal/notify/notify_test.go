package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

const helperEnv = "TOKEND_NOTIFY_TEST_HELPER"

// TestMain turns the test binary into the --on-change program when
// helperEnv is set: "append FILE" appends its pid, "exit" exits 3, "hang"
// blocks until killed, "group" starts three "hang" processes, prints
// "child PID" for each and hangs, "report" prints "ready" once it handles
// SIGUSR1 and "signal NAME" when it gets it, then exits.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "append":
		f, err := os.OpenFile(os.Args[1], os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			os.Exit(2)
		}
		fmt.Fprintln(f, os.Getenv("TOKEND_TOKEN_FINGERPRINT"))
		os.Exit(0)
	case "exit":
		os.Exit(3)
	case "hang":
		select {}
	case "group":
		for range 3 {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"=hang")
			cmd.Stdout = os.Stdout
			if cmd.Start() != nil {
				os.Exit(2)
			}
			fmt.Printf("child %d\n", cmd.Process.Pid)
		}
		select {}
	case "report":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGUSR1)
		fmt.Println("ready")
		fmt.Printf("signal %s\n", <-sigs)
		os.Exit(0)
	}
}

// blocking is a Notifier that holds each notification until released.
type blocking struct {
	started chan struct{}
	release chan error
	calls   atomic.Int32
}

func (b *blocking) Name() string { return "command" }
func (b *blocking) Notify(ctx context.Context) error {
	b.calls.Add(1)
	b.started <- struct{}{}
	return <-b.release
}

func TestChangesDuringANotificationCoalesce(t *testing.T) {
	b := &blocking{started: make(chan struct{}), release: make(chan error)}
	reg := prometheus.NewRegistry()
	r := NewRunner([]Notifier{b}, slog.New(slog.DiscardHandler), reg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Changed()
	<-b.started
	for range 5 { // the refresh loop is never held up
		r.Changed()
	}
	b.release <- errors.New("boom")
	<-b.started // one more run covers the five changes
	b.release <- nil
	cancel()
	<-done
	if n := b.calls.Load(); n != 2 {
		t.Errorf("%d notifications for 6 changes, 5 during the first; want 2", n)
	}
	for res, want := range map[string]float64{"success": 1, "failure": 1} {
		if got := counter(t, reg, "command", res); got != want {
			t.Errorf("tokend_notifications_total{result=%q} = %v, want %v", res, got, want)
		}
	}
}

// TestStoredMarksChangesOnly: the first token, and the same token stored
// again (a lost file written back), are no change; a different token is.
// A withdrawal is a change once, however many refusals follow, and so is
// the first token after it, even the one withdrawn.
func TestStoredMarksChangesOnly(t *testing.T) {
	r := NewRunner([]Notifier{&blocking{}}, slog.New(slog.DiscardHandler), nil)
	tok := func(v string) exchange.Token { return exchange.Token{Value: secret.New(v)} }
	for i, step := range []struct {
		tok string
		due bool
	}{{"first", false}, {"first", false}, {"second", true}, {"second", false}, {"third", true},
		{"-", true}, {"-", false}, {"third", true}, {"third", false}} {
		if step.tok == "-" {
			r.Withdrawn("token endpoint answered 403 Forbidden")
		} else {
			r.Stored(tok(step.tok), true)
		}
		select {
		case <-r.due[0]:
			if !step.due {
				t.Fatalf("step %d (%s): a notification is due, want none", i, step.tok)
			}
		default:
			if step.due {
				t.Fatalf("step %d (%s): no notification due, want one", i, step.tok)
			}
		}
	}
}

func TestSignalRereadsThePIDFile(t *testing.T) {
	pid, lines := consumer(t) // not this process: tokend's own pid is refused
	pidFile := filepath.Join(t.TempDir(), "consumer.pid")
	s := &Signal{PIDFile: pidFile, Sig: syscall.SIGUSR1}

	for _, tc := range []struct{ content, want string }{
		{"", "does not exist"},
		{"  \n", "not a process id"},
		{"1", "not a process id"},
		{"2147483000", "does not exist (or is in another process namespace)"},
		{fmt.Sprintf("%d\n", pid), ""},
	} {
		if tc.content != "" {
			if err := os.WriteFile(pidFile, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Notify(t.Context())
		if tc.want == "" {
			if err != nil {
				t.Fatalf("pid file %q: %v", tc.content, err)
			}
			if got := testkit.Await(t, "the consumer's signal", lines); got != "signal user defined signal 1" {
				t.Errorf("consumer printed %q", got)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--notify-pid-file") {
			t.Errorf("pid file %q: error %v, want one naming --notify-pid-file and saying %q", tc.content, err, tc.want)
		}
	}
}

func TestCommandRunsWithoutAShell(t *testing.T) {
	out := filepath.Join(t.TempDir(), "calls; echo injected")
	c := &Command{Argv: []string{os.Args[0], out}, Env: append(os.Environ(), helperEnv+"=append", "TOKEND_TOKEN_FINGERPRINT=abc123")}
	for range 2 {
		if err := c.Notify(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil || string(data) != "abc123\nabc123\n" {
		t.Errorf("program wrote %q, %v; want two lines", data, err)
	}
}

func TestCommandFailures(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"exit", "exit status 3"},
		{"hang", "did not finish within 1ms"},
	} {
		c := &Command{Argv: []string{os.Args[0]}, Env: append(os.Environ(), helperEnv+"="+tc.mode), Timeout: time.Millisecond}
		if tc.mode == "exit" {
			c.Timeout = time.Minute
		}
		err := c.Notify(t.Context())
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--on-change") {
			t.Errorf("%s: error %v, want %q naming --on-change", tc.mode, err, tc.want)
		}
	}
	c := &Command{Argv: []string{"tokend-no-such-program"}}
	if err := c.Notify(t.Context()); err == nil || !strings.Contains(err.Error(), "full path") {
		t.Errorf("missing program: %v", err)
	}
}

func TestParseArgv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"/bin/reload --all", []string{"/bin/reload", "--all"}, ""},
		{"  a \t b  ", []string{"a", "b"}, ""},
		{`["/bin/sh", "-c", "kill -HUP $(cat /run/app.pid)"]`, []string{"/bin/sh", "-c", "kill -HUP $(cat /run/app.pid)"}, ""},
		{`/bin/echo "two words"`, nil, "JSON array"},
		{`["/bin/x", 3]`, nil, "JSON array of strings"},
		{`[]`, nil, "must start with the program"},
		{"  ", nil, "empty"},
	} {
		got, err := ParseArgv(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseArgv(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseArgv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// counter reads tokend_notifications_total{notifier,result} from reg.
func counter(t *testing.T, reg *prometheus.Registry, notifier, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tokend_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["notifier"] == notifier && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no tokend_notifications_total{notifier=%q,result=%q}", notifier, result)
	return 0
}
