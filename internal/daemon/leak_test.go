package daemon_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/test/fakeissuer"
	"github.com/ambient-code/tokend/test/testkit"
	"github.com/ambient-code/tokend/test/testkit/daemonevents"
)

// leakIssuer answers every request with a new opaque JWT (no credential
// check, and no record of requests, so that it does not grow), fails one
// request in seven with a fault, and holds a request while the test takes
// a measurement.
type leakIssuer struct {
	n      atomic.Int64                  // requests
	minted atomic.Int64                  // tokens handed out
	gate   atomic.Pointer[chan struct{}] // non-nil: hold the next request until closed
	held   chan struct{}                 // a request is being held
}

func (s *leakIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.n.Add(1)
	if g := s.gate.Swap(nil); g != nil {
		s.held <- struct{}{}
		fakeissuer.Hang(*g)(w, r)
		return
	}
	switch {
	case n%7 == 1 && n%3 == 0:
		fakeissuer.Status(503)(w, r)
	case n%7 == 1 && n%3 == 1:
		fakeissuer.ResetMidBody()(w, r)
	case n%7 == 1:
		fakeissuer.Body("<html>proxy error</html>")(w, r)
	default:
		s.minted.Add(1)
		claims := fmt.Sprintf(`{"jti":"%d","exp":%d}`, n, time.Now().Add(15*time.Minute).Unix())
		fakeissuer.Body(`{"token":"`+testkit.JWT(claims)+`"}`)(w, r)
	}
}

// usage is one measurement of the process.
type usage struct {
	goroutines, fds int
	heap            uint64 // live heap after a collection
}

func measure(t *testing.T) usage {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return usage{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapAlloc}
}

// TestRunRefreshCyclesDoNotLeak runs `run` through many refresh cycles
// (each an exchange and a write of the token file), with one exchange in
// seven a failure (503, reset connection, junk body), with probes
// and metrics scraped along the way: goroutines and open files must stay
// at their level after warm-up, and the live heap must not grow.
//
// The refresh interval is 1 ms, which an operator's explicit interval may
// be: the real loop cycles as fast as it can instead of every 500 ms.
func TestRunRefreshCyclesDoNotLeak(t *testing.T) {
	cycles := int64(600)
	if os.Getenv("TOKEND_LONG") != "" {
		cycles = 10000
	}
	iss := &leakIssuer{held: make(chan struct{})}
	srv := httptest.NewServer(iss)
	defer srv.Close()
	cfg := testConfig(srv.URL+"/token", testkit.RSAKey().Public().(*rsa.PublicKey), "leak-test-session-0001", filepath.Join(t.TempDir(), "token"))
	cfg.MaxBackoff = time.Millisecond
	cfg.RefreshInterval = time.Millisecond // honoured as given: the floor too
	cfg.HealthAddr = "127.0.0.1:0"
	addr := make(chan net.Addr, 1)
	// stored wakes the test after each store; a log of events would grow
	// the heap this test measures.
	stored := make(chan struct{}, 1)
	observe := func(e daemonevents.Event) {
		if e.Kind == daemonevents.HealthListening {
			addr <- e.Addr
		}
		if e.Kind == daemonevents.TokenStored {
			select {
			case stored <- struct{}{}:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, cfg, daemonevents.Observe(daemon.Deps{
			Logger:    slog.New(slog.DiscardHandler),
			Exchanger: cfg.Exchanger,
		}, observe))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	probes := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	health := "http://" + testkit.Await(t, "the health server", addr).String()
	scrape := func() {
		for _, p := range []string{"/readyz", "/livez", "/metrics"} {
			resp, err := probes.Get(health + p)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// at holds run at an exchange once the issuer has handed out n tokens,
	// so that every measurement is taken in the same state.
	var scraped int64
	at := func(n int64) usage {
		for iss.minted.Load() < n {
			select {
			case err := <-done:
				t.Fatalf("run returned: %v", err)
			case <-stored:
			case <-time.After(testkit.Patience):
				t.Fatalf("no token stored in %v", testkit.Patience)
			}
			if c := iss.n.Load(); c-scraped >= 50 {
				scraped = c
				scrape()
			}
		}
		release := make(chan struct{})
		iss.gate.Store(&release)
		<-iss.held
		u := measure(t)
		close(release)
		return u
	}
	warm := cycles / 10
	start := time.Now()
	base := at(warm)
	mid := at(warm + (cycles-warm)/2)
	end := at(cycles)
	took := time.Since(start)
	t.Logf("%d refresh cycles (%d after warm-up; %d exchanges in all, one in seven failing) in %v: goroutines %d → %d → %d, open files %d → %d → %d, live heap %d → %d → %d KiB",
		cycles, cycles-warm, iss.n.Load(), took.Round(time.Millisecond), base.goroutines, mid.goroutines, end.goroutines,
		base.fds, mid.fds, end.fds, base.heap>>10, mid.heap>>10, end.heap>>10)
	if end.goroutines > base.goroutines {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, end.goroutines)
	}
	if end.fds > base.fds {
		t.Errorf("open files grew from %d to %d", base.fds, end.fds)
	}
	// The heap wobbles with the garbage collector's timing by some tens of
	// KiB; a leak of even 100 bytes a cycle would show as more than that.
	if slack := uint64(256 << 10); end.heap > base.heap+slack {
		t.Errorf("live heap grew from %d to %d KiB", base.heap>>10, end.heap>>10)
	}
}
