// Command heldconns measures what held connections cost a real tokend
// binary. It runs `tokend run` against test/fakecp (20 s tokens, so tokend
// refreshes every few seconds) with the refresh socket and the credential
// proxy (in front of a local upstream) on Unix sockets and the probes on a
// loopback port. Then, for each listener in turn, with a fresh tokend each
// time, it opens connections that each make one keep-alive request and
// stay open. It reports the resident memory (now, and the peak), the
// descriptors and goroutines before and after (goroutines -1: the probe
// server did not answer a scrape within 10 s), how many connections tokend
// still holds, and whether it still refreshed the token while they were
// held. The probe server is measured last, as the scrapes go through it.
// Give it several binaries (say main's and a branch's) to compare them in
// one run:
//
//	go build -o bin/fakecp ./test/fakecp
//	go run ./hack/heldconns -fakecp bin/fakecp -refresh 1000 -proxy 2000 bin/tokend-old bin/tokend
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	fakecp := flag.String("fakecp", "", "path to a built test/fakecp (required)")
	nRefresh := flag.Int("refresh", 1000, "connections to hold on the refresh socket")
	nProxy := flag.Int("proxy", 2000, "connections to hold on the credential proxy")
	nProbe := flag.Int("probe", 200, "connections to hold on the probe server")
	flag.Parse()
	if *fakecp == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: heldconns -fakecp PATH [-refresh N] [-proxy N] [-probe N] TOKEND...")
		os.Exit(2)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	defer up.Close()
	fmt.Println("binary\tlistener\tconns\tRSS MiB before→after (peak)\tfds before→after\tgoroutines before→after\tstill held\trefreshed while held")
	for _, bin := range flag.Args() {
		for _, target := range []string{"refresh", "proxy", "probe"} {
			n := map[string]int{"refresh": *nRefresh, "proxy": *nProxy, "probe": *nProbe}[target]
			if err := measure(bin, *fakecp, up.URL, target, n); err != nil {
				fmt.Fprintf(os.Stderr, "%s %s: %v\n", bin, target, err)
				os.Exit(1)
			}
		}
	}
}

// sample is one reading of tokend's resources.
type sample struct {
	rss, hwm   int64 // bytes
	fds        int
	goroutines int
	token      string
}

func measure(bin, fakecp, upstream, target string, n int) error {
	dir, err := os.MkdirTemp("", "heldconns")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cpURL, err := start(ctx, exec.Command(fakecp, "--addr", "127.0.0.1:0", "--public-key-out", filepath.Join(dir, "cp.pub"),
		"--lifetime", "20s", "--cache-floor", "5s"), regexp.MustCompile(`url=(\S+)`))
	if err != nil {
		return fmt.Errorf("fakecp: %w", err)
	}
	tokenDir := filepath.Join(dir, "token")
	if err := os.Mkdir(tokenDir, 0o700); err != nil {
		return err
	}
	sockets := map[string]string{"refresh": filepath.Join(tokenDir, ".tokend.sock"), "proxy": filepath.Join(dir, "proxy.sock")}
	cmd := exec.Command(bin, "run")
	cmd.Env = []string{
		"AMBIENT_CP_TOKEN_URL=" + cpURL, "TOKEND_PUBLIC_KEY_FILE=" + filepath.Join(dir, "cp.pub"), "SESSION_ID=heldconns-session-0001",
		"TOKEND_TOKEN_FILE=" + filepath.Join(tokenDir, "token"), "TOKEND_HEALTH_ADDR=127.0.0.1:0",
		"TOKEND_REFRESH_SOCKET=" + sockets["refresh"], "TOKEND_PROXY_LISTEN=unix:" + sockets["proxy"],
		"AMBIENT_API_SERVER_URL=" + upstream, "LOG_FORMAT=json",
	}
	health, err := start(ctx, cmd, regexp.MustCompile(`"health server listening".*"addr":"([^"]+)"`))
	if err != nil {
		return fmt.Errorf("tokend: %w", err)
	}
	pid := cmd.Process.Pid
	if err := waitFor(func() bool { _, err := os.Stat(filepath.Join(tokenDir, "token")); return err == nil }); err != nil {
		return errors.New("no token written")
	}
	before, err := read(pid, health, tokenDir)
	if err != nil {
		return err
	}
	network, addr, method, path := "unix", sockets[target], http.MethodPost, "/v1/refresh"
	switch target {
	case "proxy":
		method, path = http.MethodGet, "/held"
	case "probe":
		network, addr, method, path = "tcp", health, http.MethodGet, "/livez"
	}
	conns := hold(network, addr, method, path, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	after, err := read(pid, health, tokenDir)
	if err != nil {
		return err
	}
	refreshed := "no"
	t0 := time.Now()
	if waitFor(func() bool { s, err := read(pid, health, tokenDir); return err == nil && s.token != after.token }) == nil {
		refreshed = fmt.Sprintf("yes, %.0f s later", time.Since(t0).Seconds())
	}
	final, err := read(pid, health, tokenDir)
	if err != nil {
		return err
	}
	open := 0
	for _, c := range conns {
		if !closedByPeer(c) {
			open++
		}
	}
	fmt.Printf("%s\t%s\t%d\t%.1f→%.1f (%.1f)\t%d→%d\t%d→%d\t%d\t%s\n", filepath.Base(bin), target, len(conns),
		mib(before.rss), mib(after.rss), mib(final.hwm), before.fds, after.fds, before.goroutines, after.goroutines, open, refreshed)
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// start starts cmd, waits for a line of its stderr matching re and returns
// the first group; the rest of stderr is discarded. cmd ends with ctx.
func start(ctx context.Context, cmd *exec.Cmd, re *regexp.Regexp) (string, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { <-ctx.Done(); _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return m[1], nil
		}
	}
	return "", fmt.Errorf("exited before logging %s", re)
}

// waitFor polls cond every 100 ms for up to a minute.
func waitFor(cond func() bool) error {
	for range 600 {
		if cond() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("timed out")
}

// hold opens n connections to addr, 50 at a time, each making one
// keep-alive request; it returns the connections whose request was
// answered within 5 s.
func hold(network, addr, method, path string, n int) []net.Conn {
	var mu sync.Mutex
	var conns []net.Conn
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.Dial(network, addr)
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // a server that queues gets 5 s
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: tokend\r\nContent-Length: 0\r\n\r\n", method, path)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				c.Close()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			_ = c.SetDeadline(time.Time{})
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return conns
}

// read samples tokend's resources and the token on disk.
func read(pid int, health, tokenDir string) (sample, error) {
	var s sample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for line := range strings.Lines(string(status)) {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			s.rss = kb << 10
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			s.hwm = kb << 10
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	s.goroutines = goroutines(health)
	tok, err := os.ReadFile(filepath.Join(tokenDir, "token"))
	s.token = string(tok)
	return s, err
}

// goroutines scrapes go_goroutines from tokend's /metrics, or returns -1
// when the probe server does not answer within 10 s.
func goroutines(health string) int {
	// A fresh client per scrape: a held one would count as a connection.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + health + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	n := -1
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			fmt.Sscan(v, &n)
		}
	}
	return n
}

// closedByPeer reports, without waiting, whether tokend closed c.
func closedByPeer(c net.Conn) bool {
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return true
	}
	var n int
	var rerr error
	_ = raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), make([]byte, 1), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	if errors.Is(rerr, syscall.EAGAIN) {
		return false
	}
	return rerr != nil || n == 0
}
