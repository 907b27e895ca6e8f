package listen

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHeldConns: the heap and stacks that held connections cost the
// process (the serving side and the raw client sockets), per connection:
// idle keep-alive ones, and ones whose request carries the largest header
// the limits allow (100 fields filling MaxHeaderBytes) while its handler
// waits. Reports each against the figure MemoryBound counts per
// connection. Measures once, whatever b.N.
//
//	go test -run '^$' -bench HeldConns ./internal/listen
func BenchmarkHeldConns(b *testing.B) {
	const n = 256
	lim := Limits{MaxConns: n, MaxHeaderBytes: 32 << 10, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour}
	entered, release := make(chan struct{}, n), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	sv := serve(b, &Server{Handler: h, Limits: lim})
	b.ResetTimer()

	h0 := heapNow()
	for range n {
		c := dial(b, sv.addr)
		c.get(b)
		c.r = nil // count the server's side, not the client's buffer
		sv.await(b, http.StateIdle)
	}
	idle := float64(heapNow()-h0) / n

	big := bigHeader(lim)
	h1 := heapNow()
	for range n {
		c := dial(b, sv.addr) // evicts an idle one
		if _, err := io.WriteString(c, big); err != nil {
			b.Fatal(err)
		}
		<-entered
	}
	full := float64(heapNow()-h1)/n + idle
	close(release)
	b.StopTimer()

	perConn := float64(lim.MemoryBound()) / n
	b.ReportMetric(idle/1024, "idle-KiB/conn")
	b.ReportMetric(full/1024, "full-header-KiB/conn")
	b.ReportMetric(perConn/1024, "bound-KiB/conn")
	b.ReportMetric(idle/ConnBytes, "idle/ConnBytes")
	b.ReportMetric(full/perConn, "full-header/bound")
	b.ReportMetric(0, "ns/op")
}

// bigHeader is a request with MaxHeaderFields fields filling
// MaxHeaderBytes, to /hold.
func bigHeader(l Limits) string {
	var sb strings.Builder
	sb.WriteString("GET /hold HTTP/1.1\r\nHost: x\r\n")
	each := l.MaxHeaderBytes/(MaxHeaderFields-1) - 12
	for i := 1; i < MaxHeaderFields; i++ {
		fmt.Fprintf(&sb, "X-F%03d: %s\r\n", i, strings.Repeat("v", each))
	}
	sb.WriteString("\r\n")
	return sb.String()
}

// heapNow returns the heap and stacks in use after a collection.
func heapNow() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// BenchmarkOverhead: small GETs from 64 concurrent keep-alive clients to
// a plain http.Server and to a Server with the same handler, interleaved
// in eight rounds; reports the throughput ratio, the cost of the cap, the
// state tracking and the header scan.
func BenchmarkOverhead(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"ok":true}`) })
	plain := httptest.NewServer(h)
	b.Cleanup(plain.Close)
	bounded := serve(b, &Server{Handler: h, Limits: Limits{MaxConns: 128, MaxHeaderBytes: 32 << 10, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour}})
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	const rounds, clients = 8, 64
	per := max(b.N/rounds, clients)
	run := func(url string) time.Duration {
		var left atomic.Int64
		left.Store(int64(per))
		var wg sync.WaitGroup
		t0 := time.Now()
		for range clients {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	urls := []string{plain.URL, "http://" + bounded.addr}
	for _, u := range urls {
		run(u)
	}
	b.ResetTimer()
	var took [2]time.Duration
	for range rounds {
		for i, u := range urls {
			took[i] += run(u)
		}
	}
	b.StopTimer()
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "bounded/plain")
	b.ReportMetric(0, "ns/op")
}
