package daemon_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refreshsock"
)

// benchChildEnv makes the test binary the child of the exec benchmarks: it
// prints "start", then "signal NAME" for each signal, and exits on SIGTERM.
const benchChildEnv = "TOKEND_DAEMON_BENCH_CHILD"

func init() {
	if os.Getenv(benchChildEnv) == "" {
		return
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	fmt.Println("start")
	for sig := range sigs {
		fmt.Println("signal", sig)
		if sig == syscall.SIGTERM {
			os.Exit(0)
		}
	}
}

// timed records the duration and the end of each exchange.
type timed struct {
	next       exchange.Exchanger
	mu         sync.Mutex // guards start, dur, end
	start, end time.Time
	dur        time.Duration
}

func (t *timed) Exchange(ctx context.Context) (exchange.Token, error) {
	start := time.Now()
	tok, err := t.next.Exchange(ctx)
	end := time.Now()
	t.mu.Lock()
	t.start, t.end, t.dur = start, end, end.Sub(start)
	t.mu.Unlock()
	return tok, err
}

func (t *timed) last() (start, end time.Time, dur time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start, t.end, t.dur
}

type line struct {
	text string
	at   time.Time
}

// BenchmarkExecRestart measures, per refresh request that changes the
// token: request to answer (the new token is on disk when it comes), and
// end of the exchange to the restarted child's first output, each as a
// ratio to that exchange's own duration. The end of the exchange precedes
// the write, so the write is counted in. Restarts come every ~0.6 s here,
// so the restart backoff is off (ZeroBackOff): it would otherwise space
// them, as intended for a child restarting more than once a minute.
func BenchmarkExecRestart(b *testing.B) { benchExec(b, child.PolicyRestart, "start") }

// BenchmarkExecSignal measures the same for --change-policy signal: end
// of the exchange to the child's report that it got SIGHUP.
func BenchmarkExecSignal(b *testing.B) { benchExec(b, child.PolicySignal, "signal") }

func benchExec(b *testing.B, policy child.Policy, want string) {
	cfg, ex, lines := startExec(b, policy)
	<-lines // the first start
	var toDisk, toChild, exch []float64
	for b.Loop() {
		b.StopTimer()
		pace(ex) // requests within 500 ms of an exchange wait for the floor; measure past it
		b.StartTimer()
		t0 := time.Now()
		resp, err := refreshsock.Request(b.Context(), cfg.Consumers.RefreshSocket)
		answered := time.Now()
		if err != nil || !resp.Changed {
			b.Fatalf("refresh: %+v, %v", resp, err)
		}
		_, end, dur := ex.last()
		var l line
		for l = range lines {
			if strings.HasPrefix(l.text, want) && (want != "signal" || l.text == "signal hangup") {
				break
			}
		}
		toDisk = append(toDisk, float64(answered.Sub(t0))/float64(dur))
		toChild = append(toChild, float64(l.at.Sub(end))/float64(dur))
		exch = append(exch, float64(dur))
	}
	report(b, toDisk, "request-to-disk")
	report(b, toChild, "change-to-child")
	slices.Sort(exch)
	b.ReportMetric(exch[len(exch)/2]/1e6, "exchange-ms-p50")
}

func pace(ex *timed) {
	start, _, _ := ex.last()
	if d := time.Until(start.Add(550 * time.Millisecond)); d > 0 {
		<-time.After(d) // load pacing of a benchmark, not test sequencing
	}
}

func report(b *testing.B, xs []float64, name string) {
	slices.Sort(xs)
	b.ReportMetric(xs[len(xs)/2], name+"/exchange-p50")
	b.ReportMetric(xs[len(xs)*9/10], name+"/exchange-p90")
	b.ReportMetric(xs[min(len(xs)-1, len(xs)*99/100)], name+"/exchange-p99")
	b.Logf("%s: %d samples, the five largest ratios %.1f", name, len(xs), xs[max(0, len(xs)-5):])
}

// startExec runs daemon.Exec in-process against a fake issuer minting a
// new token per exchange, with the test binary as its child; the child's
// output lines arrive on the returned channel, stamped when read.
func startExec(b *testing.B, policy child.Policy) (*daemon.Config, *timed, <-chan line) {
	cfg, dir := encryptedWorld(b)
	os.Setenv(benchChildEnv, "1") // the child inherits tokend's environment
	b.Cleanup(func() { os.Unsetenv(benchChildEnv) })
	cfg.Command, cfg.Exec.Policy, cfg.Exec.Argv = "exec", policy, []string{os.Args[0]}
	cfg.Consumers.RefreshSocket = filepath.Join(dir, ".tokend.sock")
	ex := &timed{next: cfg.Exchanger}
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	lines := make(chan line, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- line{sc.Text(), time.Now()}
		}
	}()
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		daemon.Exec(context.Background(), cfg, daemon.Deps{Logger: slog.New(slog.DiscardHandler), Exchanger: ex},
			daemon.ExecDeps{Signals: sigs, Stdout: w, Stderr: os.Stderr, RestartBackoff: &backoff.ZeroBackOff{}})
	}()
	b.Cleanup(func() { sigs <- syscall.SIGTERM; <-done; w.Close(); r.Close() })
	return cfg, ex, lines
}
