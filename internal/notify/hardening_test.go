package notify

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestCommandTimeoutKillsItsProcessGroup: when --on-change runs past its
// timeout, every process it started dies with it, not only the program.
func TestCommandTimeoutKillsItsProcessGroup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fire := make(chan time.Time)
	c := &Command{Argv: []string{os.Args[0]}, Env: append(os.Environ(), helperEnv+"=group"), Timeout: time.Minute, Output: w,
		after: func(d time.Duration) <-chan time.Time {
			if d != time.Minute {
				t.Errorf("timer set for %s, want the Timeout", d)
			}
			return fire
		}}
	errc := make(chan error, 1)
	go func() { errc <- c.Notify(t.Context()) }()
	var pids []int
	sc := bufio.NewScanner(r)
	for len(pids) < 3 && sc.Scan() {
		pid, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "child "))
		if err != nil {
			t.Fatalf("program printed %q", sc.Text())
		}
		pids = append(pids, pid)
	}
	fire <- time.Now() // the timeout
	err = testkit.Await(t, "Notify to return", errc)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 1m0s") {
		t.Errorf("error %v, want the timeout", err)
	}
	for _, pid := range pids {
		testkit.AwaitExit(t, pid)
	}
}

// gonePID returns the pid of a process that has exited and been reaped.
func gonePID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=exit")
	_ = cmd.Run()
	return cmd.Process.Pid
}

// consumer starts a process that reports SIGUSR1, and returns its pid and
// a channel of its lines; it has printed "ready" once this returns.
func consumer(t *testing.T) (int, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=report")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if got := testkit.Await(t, "the consumer to start", lines); got != "ready" {
		t.Fatalf("consumer printed %q", got)
	}
	return cmd.Process.Pid, lines
}

// stepBackOff hands each retry delay to the test: NextBackOff reports the
// call on calls and returns what the test sends on delays.
type stepBackOff struct {
	calls  chan struct{}
	delays chan time.Duration
	resets atomic.Int32
}

func newStepBackOff() *stepBackOff {
	return &stepBackOff{calls: make(chan struct{}), delays: make(chan time.Duration)}
}

func (b *stepBackOff) NextBackOff() time.Duration { b.calls <- struct{}{}; return <-b.delays }
func (b *stepBackOff) Reset()                     { b.resets.Add(1) }

// TestSignalRetriesUntilThePIDFileNamesALiveProcess: a consumer that
// restarts when the token changes writes its new pid a moment after the
// change; the signal reaches it then, not never.
func TestSignalRetriesUntilThePIDFileNamesALiveProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "consumer.pid")
	for _, tc := range []struct{ name, stale string }{
		{"missing", ""},
		{"empty", "\n"},
		{"gone process", strconv.Itoa(gonePID(t))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(pidFile)
			if tc.stale != "" {
				if err := os.WriteFile(pidFile, []byte(tc.stale), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			b := newStepBackOff()
			run := &Runner{RetryBackoff: func() backoff.BackOff { return b }, log: slog.New(slog.DiscardHandler)}
			errc := make(chan error, 1)
			go func() { errc <- run.deliver(t.Context(), &Signal{PIDFile: pidFile, Sig: syscall.SIGUSR1}, nil) }()
			testkit.Await(t, "the first attempt to fail", b.calls)
			pid, lines := consumer(t) // the consumer comes up, and writes its pid
			if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o600); err != nil {
				t.Fatal(err)
			}
			b.delays <- time.Millisecond
			if err := testkit.Await(t, "the retry", errc); err != nil {
				t.Fatalf("the retry failed: %v", err)
			}
			if got := testkit.Await(t, "the consumer's signal", lines); got != "signal user defined signal 1" {
				t.Errorf("consumer printed %q", got)
			}
		})
	}
}

// TestSignalRetryEndsAtTheNextChangeOrTheBackoff: a retry waiting for its
// delay runs at once when the next change arrives, with a fresh budget; a
// backoff that gives up ends the notification with its error.
func TestSignalRetryEndsAtTheNextChangeOrTheBackoff(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "consumer.pid")
	b := newStepBackOff()
	run := &Runner{RetryBackoff: func() backoff.BackOff { return b }, log: slog.New(slog.DiscardHandler)}
	due := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() { errc <- run.deliver(t.Context(), &Signal{PIDFile: pidFile, Sig: syscall.SIGUSR1}, due) }()
	testkit.Await(t, "the first attempt to fail", b.calls)
	b.delays <- time.Hour // only the next change ends this wait
	pid, lines := consumer(t)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	due <- struct{}{}
	if err := testkit.Await(t, "the retry at the change", errc); err != nil || b.resets.Load() != 1 {
		t.Fatalf("deliver = %v after %d resets; want nil after 1", err, b.resets.Load())
	}
	testkit.Await(t, "the consumer's signal", lines)

	os.Remove(pidFile)
	go func() { errc <- run.deliver(t.Context(), &Signal{PIDFile: pidFile, Sig: syscall.SIGUSR1}, due) }()
	testkit.Await(t, "the first attempt to fail", b.calls)
	b.delays <- backoff.Stop
	if err := testkit.Await(t, "deliver to give up", errc); err == nil || !strings.Contains(err.Error(), "--notify-pid-file") {
		t.Errorf("deliver = %v, want the pid file's error", err)
	}
}

// TestSignalRefusesTokendsOwnPID: a pid file naming tokend itself would
// turn every notification into a refresh signal to tokend, and so into
// another exchange and another notification, without end.
func TestSignalRefusesTokendsOwnPID(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	defer signal.Stop(sigs)
	pidFile := filepath.Join(t.TempDir(), "consumer.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	err := (&Signal{PIDFile: pidFile, Sig: syscall.SIGHUP}).Notify(t.Context())
	if err == nil || !strings.Contains(err.Error(), "names tokend itself") || !strings.Contains(err.Error(), "--notify-pid-file") || errors.As(err, new(retryable)) {
		t.Errorf("error %v, want a refusal naming --notify-pid-file, not retried", err)
	}
}
