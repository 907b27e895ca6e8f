package tokenfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
