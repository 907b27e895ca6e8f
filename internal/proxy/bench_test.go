package proxy

// Benchmarks of the proxy against a direct request to the same upstream in
// the same run; each reports the ratio, since the machine's speed varies.
//
//	go test -run '^$' -bench . -benchtime 5000x ./internal/proxy
//
// BenchmarkIdleConns measures once, whatever b.N.

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchEnv is an upstream and a proxy in front of it, with one client for
// both, able to keep 64 connections to each.
type benchEnv struct {
	upstream, proxied string
	bare              string // a plain httputil.ReverseProxy to the upstream
	client            *http.Client
	gate              *gate
	release           chan struct{} // the SSE handler ends its stream on a receive
}

func newBenchEnv(b *testing.B) *benchEnv {
	e := &benchEnv{gate: &gate{}, release: make(chan struct{}, 1)}
	up := httptest.NewServer(http.HandlerFunc(e.serveUpstream))
	b.Cleanup(up.Close)
	u, err := ParseUpstream(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	src := newSource()
	src.set("bench-token", time.Now().Add(time.Hour))
	p, err := New(Config{Upstream: u}, src)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := ListenMode("127.0.0.1:0", 0o660)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	e.upstream, e.proxied, e.client = up.URL, "http://"+ln.Addr().String(), &http.Client{Transport: tr}
	e.bare = bareProxy(b, up.URL)
	return e
}

func (e *benchEnv) serveUpstream(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-e.release:
		case <-r.Context().Done():
		}
	case "/gate":
		e.gate.wait()
	default:
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
}

// get sends a small GET and reads the whole answer.
func (e *benchEnv) get(b *testing.B, base string) {
	resp, err := e.client.Get(base + "/small")
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkAddedLatency: a small GET on loopback, direct, through the proxy
// and through a bare httputil.ReverseProxy, interleaved; reports p50 and p99
// of each and the differences.
func BenchmarkAddedLatency(b *testing.B) {
	e := newBenchEnv(b)
	timed := func(base string) time.Duration {
		t0 := time.Now()
		e.get(b, base)
		return time.Since(t0)
	}
	interleave(b, e, timed)
}

// interleave measures timed against the direct, proxied and bare URLs in
// turn, b.N times each, and reports the percentiles.
func interleave(b *testing.B, e *benchEnv, timed func(base string) time.Duration) {
	bases := []string{e.upstream, e.proxied, e.bare}
	series := make([][]time.Duration, len(bases))
	for i, base := range bases {
		timed(base) // warm the connections
		series[i] = make([]time.Duration, 0, b.N)
	}
	b.ResetTimer()
	for range b.N {
		for i, base := range bases {
			series[i] = append(series[i], timed(base))
		}
	}
	reportPercentiles(b, series[0], series[1], series[2])
}

// BenchmarkSSEFirstEvent: the time from sending a request to reading the
// first server-sent event, direct and through the proxy, interleaved.
func BenchmarkSSEFirstEvent(b *testing.B) {
	e := newBenchEnv(b)
	first := func(base string) time.Duration {
		t0 := time.Now()
		resp, err := e.client.Get(base + "/sse")
		if err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		d := time.Since(t0)
		if err != nil || line != "data: first\n" {
			b.Fatalf("first event %q: %v", line, err)
		}
		e.release <- struct{}{}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return d
	}
	interleave(b, e, first)
}

// reportPercentiles reports p50 and p99 of each series, the proxy's added
// time over direct, and the bare ReverseProxy's, for comparison.
func reportPercentiles(b *testing.B, direct, proxied, bare []time.Duration) {
	b.StopTimer()
	for _, s := range [][]time.Duration{direct, proxied, bare} {
		slices.Sort(s)
	}
	for _, q := range []struct {
		name string
		f    float64
	}{{"p50", .50}, {"p99", .99}} {
		d, p, r := pct(direct, q.f), pct(proxied, q.f), pct(bare, q.f)
		b.ReportMetric(us(d), "direct-"+q.name+"-µs")
		b.ReportMetric(us(p-d), "added-"+q.name+"-µs")
		b.ReportMetric(us(r-d), "bare-added-"+q.name+"-µs")
		b.ReportMetric(float64(p)/float64(d), "proxy/direct-"+q.name)
	}
	b.ReportMetric(0, "ns/op")
}

func pct(s []time.Duration, q float64) time.Duration { return s[int(q*float64(len(s)-1))] }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkThroughput64: b.N small GETs from 64 concurrent keep-alive
// clients, in eight interleaved rounds: direct to the upstream, through the
// proxy, and through a bare httputil.ReverseProxy (no token, limits or
// metrics: the floor the standard library sets), and, when caddy is on
// PATH, through Caddy's reverse_proxy (issue 21's peer). The proxy, the
// bare one and Caddy each run in a process of their own, so that their
// resident memory under this load is theirs alone: reported as the peak
// (VmHWM) over the run. Reports requests per second and the ratios.
func BenchmarkThroughput64(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(up.Close)
	proxy, bare := startChild(b, childProxy, up.URL), startChild(b, childBare, up.URL)
	rss0 := rssOf(b, proxy.pid, "VmRSS")
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	e := &benchEnv{client: &http.Client{Transport: tr}}
	const rounds, clients = 8, 64
	per := max(b.N/rounds, clients)
	run := func(base string) time.Duration {
		var left atomic.Int64
		left.Store(int64(per))
		var wg sync.WaitGroup
		t0 := time.Now()
		for range clients {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					e.get(b, base)
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	bases := []string{up.URL, "http://" + proxy.addr, "http://" + bare.addr}
	caddy, withCaddy := startCaddy(b, strings.TrimPrefix(up.URL, "http://"))
	if withCaddy {
		bases = append(bases, "http://"+caddy.addr)
	} else {
		b.Log("no caddy on PATH: the comparison with Caddy is left out (apt-get install caddy)")
	}
	for _, base := range bases {
		run(base) // warm the connections
	}
	b.ResetTimer()
	took := make([]time.Duration, len(bases))
	for range rounds {
		for i, base := range bases {
			took[i] += run(base)
		}
	}
	b.StopTimer()
	n := float64(rounds * per)
	b.ReportMetric(n/took[0].Seconds(), "direct-req/s")
	b.ReportMetric(n/took[1].Seconds(), "proxy-req/s")
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "proxy/direct")
	b.ReportMetric(took[0].Seconds()/took[2].Seconds(), "bare-reverseproxy/direct")
	b.ReportMetric(took[2].Seconds()/took[1].Seconds(), "proxy/bare-reverseproxy")
	b.ReportMetric(float64(rss0)/(1<<20), "proxy-idle-rss-MiB")
	b.ReportMetric(float64(rssOf(b, proxy.pid, "VmHWM"))/(1<<20), "proxy-peak-rss-MiB")
	b.ReportMetric(float64(rssOf(b, bare.pid, "VmHWM"))/(1<<20), "bare-peak-rss-MiB")
	if withCaddy {
		b.ReportMetric(took[3].Seconds()/took[1].Seconds(), "proxy/caddy")
		b.ReportMetric(float64(rssOf(b, caddy.pid, "VmHWM"))/(1<<20), "caddy-peak-rss-MiB")
	}
	b.ReportMetric(0, "ns/op")
}

// bareProxy serves a plain httputil.ReverseProxy to upstream until the
// benchmark ends and returns its URL.
func bareProxy(b *testing.B, upstream string) string {
	u, err := ParseUpstream(upstream)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConns: maxIdleConns, MaxIdleConnsPerHost: maxIdleConns}
	srv := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: tr,
	})
	b.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return srv.URL
}

// BenchmarkIdleConns: the heap and stacks that 64 idle keep-alive
// connections cost in one process, direct (client and upstream ends) and
// through the proxy (client, proxy's two ends, upstream): the difference
// is the proxy's share. BenchmarkIdleConnsRSS measures the resident size.
func BenchmarkIdleConns(b *testing.B) {
	e := newBenchEnv(b)
	const conns = 64
	measure := func(base string) float64 {
		e.client.Transport.(*http.Transport).CloseIdleConnections()
		h0 := heapNow()
		e.gate.reset(conns)
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				resp, err := e.client.Get(base + "/gate")
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait() // all 64 held at the gate at once, so 64 connections, now idle
		return float64(heapNow()-h0) / conns
	}
	b.ResetTimer()
	dh := measure(e.upstream)
	ph := measure(e.proxied)
	b.StopTimer()
	b.ReportMetric(dh/1024, "direct-heap-KiB/conn")
	b.ReportMetric(ph/1024, "proxy-heap-KiB/conn")
	b.ReportMetric((ph-dh)/1024, "added-heap-KiB/conn")
	b.ReportMetric(0, "ns/op")
}

// heapNow returns the heap and stacks in use after a collection.
func heapNow() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// gate holds requests until n have arrived, then lets them all go.
type gate struct {
	mu   sync.Mutex // guards n and open
	n    int
	open chan struct{}
}

func (g *gate) reset(n int) {
	g.mu.Lock()
	g.n, g.open = n, make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) wait() {
	g.mu.Lock()
	g.n--
	open := g.open
	if g.n == 0 {
		close(open)
	}
	g.mu.Unlock()
	<-open
}
