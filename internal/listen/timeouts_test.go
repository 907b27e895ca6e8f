package listen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// TestTimeouts: a client that never finishes its header is closed after
// ReadHeaderTimeout, an idle keep-alive connection after IdleTimeout,
// each not before.
func TestTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := Limits{MaxConns: 4, MaxHeaderBytes: 4 << 10, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 15 * time.Second}
		ln := testkit.NewPipeListener()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- (&Server{Handler: ok, Limits: lim}).Serve(ctx, ln) }()
		defer func() { cancel(); <-done }()
		open := func() *client {
			c, err := ln.DialContext(t.Context(), "", "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return &client{Conn: c, r: bufio.NewReader(c)}
		}
		idle, slow := open(), open()
		idle.get(t)
		io.WriteString(slow, "GET / HTTP/1.1\r\n")
		watch := func(c *client) <-chan struct{} {
			ch := make(chan struct{})
			go func() { c.closed(); close(ch) }()
			return ch
		}
		isClosed := func(ch <-chan struct{}) bool {
			synctest.Wait()
			select {
			case <-ch:
				return true
			default:
				return false
			}
		}
		idleClosed, slowClosed := watch(idle), watch(slow)
		time.Sleep(lim.ReadHeaderTimeout - time.Millisecond)
		if isClosed(slowClosed) || isClosed(idleClosed) {
			t.Fatal("a connection was closed before its timeout")
		}
		time.Sleep(2 * time.Millisecond)
		if !isClosed(slowClosed) {
			t.Error("a client that never finished its header is connected after ReadHeaderTimeout")
		}
		time.Sleep(lim.IdleTimeout - lim.ReadHeaderTimeout - 2*time.Millisecond)
		if isClosed(idleClosed) {
			t.Fatal("the idle connection was closed before IdleTimeout")
		}
		time.Sleep(2 * time.Millisecond)
		if !isClosed(idleClosed) {
			t.Error("an idle keep-alive connection is open after IdleTimeout")
		}
	})
}

// TestShutdownCutsTunnels: when Serve's context ends, a hijacked
// connection (a tunnel) that its handler keeps open is closed too, and
// Serve returns nil.
func TestShutdownCutsTunnels(t *testing.T) {
	hijacked := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		rw.Flush()
		close(hijacked)
		_ = c // held open by the handler, as a tunnel would
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- (&Server{Handler: h, Limits: testLimits(2)}).Serve(ctx, ln) }()
	c := dial(t, ln.Addr().String())
	if code, _, err := c.do(t, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"); err != nil || code != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d, %v", code, err)
	}
	<-hijacked
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if !c.closed() {
		t.Error("the tunnel is open after Serve returned")
	}
}

// TestShutdownClosesIdleAtOnce: connections that serve no request (one
// that never sent one included) do not delay the shutdown; a request in
// progress finishes.
func TestShutdownClosesIdleAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				close(entered)
				<-release
			}
			io.WriteString(w, "ok")
		})
		ln := testkit.NewPipeListener()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- (&Server{Handler: h, Limits: testLimits(4)}).Serve(ctx, ln) }()
		open := func() *client {
			c, err := ln.DialContext(t.Context(), "", "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return &client{Conn: c, r: bufio.NewReader(c)}
		}
		silent, idle, busy := open(), open(), open()
		idle.get(t)
		io.WriteString(busy, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
		<-entered
		start := time.Now()
		cancel()
		for name, c := range map[string]*client{"silent": silent, "idle": idle} {
			if !c.closed() {
				t.Errorf("the %s connection was not closed", name)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("the %s connection was closed %s into the shutdown, want at once", name, d)
			}
		}
		close(release)
		if code, _, err := busy.do(t, ""); err != nil || code != http.StatusOK {
			t.Errorf("the request in progress: %d, %v", code, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
