package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Child modes of the test binary for BenchmarkIdleConnsRSS and
// BenchmarkThroughput64: a process that serves the upstream itself (the
// direct reference), the proxy, or a bare httputil.ReverseProxy, prints
// its address, and serves until its stdin closes.
const (
	childEnv      = "TOKEND_PROXY_BENCH_CHILD"
	childUpstream = "upstream"
	childProxy    = "proxy"
	childBare     = "bare"
	idleConns     = 64
)

func init() {
	mode := os.Getenv(childEnv)
	if mode == "" {
		return
	}
	if err := runChild(mode); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runChild(mode string) error {
	ln, err := ListenMode("127.0.0.1:0", 0o660)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	fmt.Println(ln.Addr().String())
	if mode == childUpstream {
		g := &gate{}
		g.reset(idleConns)
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { g.wait() })}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		_ = srv.Serve(ln)
		return nil
	}
	u, err := ParseUpstream(os.Getenv("TOKEND_PROXY_BENCH_UPSTREAM"))
	if err != nil {
		return err
	}
	if mode == childBare {
		tr := &http.Transport{MaxIdleConns: maxIdleConns, MaxIdleConnsPerHost: maxIdleConns}
		srv := &http.Server{Handler: &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, Transport: tr}}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		_ = srv.Serve(ln)
		return nil
	}
	src := newSource()
	src.set("bench-token", time.Now().Add(time.Hour))
	p, err := New(Config{Upstream: u}, src)
	if err != nil {
		return err
	}
	return p.Serve(ctx, ln)
}

// BenchmarkIdleConnsRSS: the resident memory of a process holding 64 idle
// keep-alive connections: the proxy (64 from clients and, as the upstream
// held them all at once, 64 to the upstream) against the upstream server
// itself holding 64 direct ones. Both are this test binary, so the
// baselines match. Measures once, whatever b.N.
func BenchmarkIdleConnsRSS(b *testing.B) {
	g := &gate{}
	g.reset(idleConns)
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { g.wait() }))
	defer up.Close()
	b.ResetTimer()
	d0, d1 := childRSS(b, childUpstream, "")
	p0, p1 := childRSS(b, childProxy, up.URL)
	b.StopTimer()
	b.ReportMetric(float64(d1)/(1<<20), "direct-rss-MiB")
	b.ReportMetric(float64(p1)/(1<<20), "proxy-rss-MiB")
	b.ReportMetric(float64(d1-d0)/1024/idleConns, "direct-rss-KiB/conn")
	b.ReportMetric(float64(p1-p0)/1024/idleConns, "proxy-rss-KiB/conn")
	b.ReportMetric(float64(p1)/float64(d1), "proxy/direct-rss")
	b.ReportMetric(0, "ns/op")
}

// child is a running child process of the test binary.
type child struct {
	addr string // host:port it serves on
	pid  int
}

// startChild starts a child in mode (for the proxy and bare modes, in
// front of upstream); it ends when the benchmark does.
func startChild(b *testing.B, mode, upstream string) child {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "TOKEND_PROXY_BENCH_UPSTREAM="+upstream)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return child{addr: string(bytes.TrimSpace([]byte(addr))), pid: cmd.Process.Pid}
}

// childRSS starts a child in mode, reads its RSS, opens 64 connections to
// it at once (one client transport each), lets them go idle, and reads its
// RSS again.
func childRSS(b *testing.B, mode, upstream string) (before, after int64) {
	c := startChild(b, mode, upstream)
	before = rssOf(b, c.pid, "VmRSS")
	var wg sync.WaitGroup
	for range idleConns {
		tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext}
		defer tr.CloseIdleConnections()
		wg.Go(func() {
			resp, err := (&http.Client{Transport: tr}).Get("http://" + c.addr + "/idle")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	return before, rssOf(b, c.pid, "VmRSS")
}

// rssOf reads field (VmRSS, the resident size now, or VmHWM, its peak)
// of process pid, in bytes.
func rssOf(b *testing.B, pid int, field string) int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skip("no /proc: ", err)
	}
	for line := range bytes.Lines(s) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, _ := strconv.ParseInt(string(bytes.Fields(v)[0]), 10, 64)
			return kb << 10
		}
	}
	b.Skip("no ", field)
	return 0
}
