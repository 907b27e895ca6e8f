package tokenfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/tokenfile"
)

// rwHolder is the baseline: a token holder built the way the in-process
// clients did it, a string behind a sync.RWMutex.
type rwHolder struct {
	mu  sync.RWMutex // guards tok
	tok string
}

func (h *rwHolder) Token() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.tok
}

// BenchmarkToken measures Token under parallel readers, beside the
// RWMutex baseline. ns/op is wall time over all calls (the inverse of the
// throughput); ns/call is what one reader waits per call.
func BenchmarkToken(b *testing.B) {
	w := startWatcher(b, "bench-token-initial", nil)
	rw := &rwHolder{tok: w.Token()}
	for _, readers := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("holder=tokenfile/readers=%d", readers), func(b *testing.B) {
			benchReaders(b, readers, func(n int) (sum int) {
				for range n {
					sum += len(w.Token())
				}
				return sum
			})
		})
		b.Run(fmt.Sprintf("holder=rwmutex/readers=%d", readers), func(b *testing.B) {
			benchReaders(b, readers, func(n int) (sum int) {
				for range n {
					sum += len(rw.Token())
				}
				return sum
			})
		})
	}
}

var sink atomic.Int64

// benchReaders splits b.N reads between readers goroutines that start
// together, and reports the time per call each reader saw.
func benchReaders(b *testing.B, readers int, read func(n int) int) {
	per := max(1, b.N/readers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			<-start
			sink.Add(int64(read(per)))
		})
	}
	b.ResetTimer()
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(per), "ns/call")
}

// BenchmarkPropagation measures the time from the rename of a new token
// file over the old one to the moment the Watcher serves the new token and
// its change callback has run, over b.N rotations.
func BenchmarkPropagation(b *testing.B) {
	changed := make(chan time.Time, 1)
	w := startWatcher(b, "bench-token-initial", func(string) { changed <- time.Now() })
	<-changed
	path, tmp := w.Path(), w.Path()+".tmp"
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		tok := fmt.Sprintf("bench-token-%09d", i)
		if err := os.WriteFile(tmp, []byte(tok), 0o600); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-changed:
			lat = append(lat, at.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("the rotation was not seen within 10s")
		}
		if w.Token() != tok {
			b.Fatal("the callback ran before Token served the new token")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 50), "p50-µs")
	b.ReportMetric(percentile(lat, 99), "p99-µs")
	b.ReportMetric(percentile(lat, 100), "max-µs")
}

// percentile returns the p-th percentile of sorted, in microseconds.
func percentile(sorted []time.Duration, p int) float64 {
	i := min(len(sorted)-1, len(sorted)*p/100)
	return float64(sorted[i].Nanoseconds()) / 1e3
}

// startWatcher writes tok to a token file, runs a Watcher on it until the
// benchmark ends, and returns it once it holds tok.
func startWatcher(b *testing.B, tok string, onChange func(string)) *tokenfile.Watcher {
	b.Helper()
	path := filepath.Join(b.TempDir(), "token")
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		b.Fatal(err)
	}
	var opts []tokenfile.Option
	if onChange != nil {
		opts = append(opts, tokenfile.WithOnChange(onChange))
	}
	w, err := tokenfile.New(path, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if _, err := w.Wait(wctx); err != nil {
		b.Fatal(err)
	}
	return w
}
