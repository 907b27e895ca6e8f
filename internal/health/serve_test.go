package health

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// pipeListener is a net.Listener over in-memory pipes, so that the server
// runs inside a synctest bubble. Dial blocks until the server accepts.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex // guards dialled
	dialled []net.Conn // client ends, for the cleanup
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) Dial() net.Conn {
	client, server := net.Pipe()
	l.mu.Lock()
	l.dialled = append(l.dialled, client)
	l.mu.Unlock()
	select {
	case l.conns <- server:
	case <-l.done:
	}
	return client
}

// serve runs m.Serve on a pipe listener in the current synctest bubble;
// the cleanup stops it and closes every connection dialled.
func serve(t *testing.T, m *Monitor) *pipeListener {
	ln := newPipeListener()
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, ln, slog.Default()) }()
	t.Cleanup(func() {
		cancel()
		ln.mu.Lock()
		for _, c := range ln.dialled {
			c.Close()
		}
		ln.mu.Unlock()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return ln
}

// get sends one keep-alive request on c and reads its answer.
func get(t *testing.T, c net.Conn, path string) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: tokend\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeCapsConnections: at MaxConns open connections, each new one
// closes the one idle longest and is served, so a flood of held
// connections neither grows tokend nor locks the probes out.
func TestServeCapsConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := serve(t, New(testDir(t).Verified, nil))
		var open []net.Conn
		for range limits.MaxConns {
			c := ln.Dial()
			if code := get(t, c, "/livez"); code != http.StatusOK {
				t.Fatalf("/livez = %d", code)
			}
			synctest.Wait() // the server has seen it turn idle
			open = append(open, c)
		}
		const extra = 3
		for range extra {
			if code := get(t, ln.Dial(), "/livez"); code != http.StatusOK {
				t.Fatalf("/livez past the cap = %d", code)
			}
			synctest.Wait()
		}
		for i, c := range open {
			if closed := testkit.ClosedByPeer(t, c); closed != (i < extra) {
				t.Errorf("connection %d: closed %v, want %v (the %d idlest close)", i, closed, i < extra, extra)
			}
		}
	})
}

// TestServeClosesIdleConnections: a keep-alive connection is closed after
// IdleTimeout without a request, and a client that never finishes its
// headers after ReadHeaderTimeout, so neither holds a slot for long.
func TestServeClosesIdleConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := serve(t, New(testDir(t).Verified, nil))
		idle := ln.Dial()
		if code := get(t, idle, "/livez"); code != http.StatusOK {
			t.Fatalf("/livez = %d", code)
		}
		slow := ln.Dial()
		io.WriteString(slow, "GET /livez HTTP/1.1\r\n") // never ends its headers
		closed := func(c net.Conn) <-chan struct{} {
			ch := make(chan struct{})
			go func() { io.Copy(io.Discard, c); close(ch) }()
			return ch
		}
		idleClosed, slowClosed := closed(idle), closed(slow)
		isClosed := func(ch <-chan struct{}) bool {
			synctest.Wait()
			select {
			case <-ch:
				return true
			default:
				return false
			}
		}

		time.Sleep(limits.ReadHeaderTimeout - time.Millisecond)
		if isClosed(slowClosed) || isClosed(idleClosed) {
			t.Fatal("a connection was closed before its timeout")
		}
		time.Sleep(2 * time.Millisecond)
		if !isClosed(slowClosed) {
			t.Errorf("a client that never finished its headers is still connected after ReadHeaderTimeout (%s)", limits.ReadHeaderTimeout)
		}
		time.Sleep(limits.IdleTimeout - limits.ReadHeaderTimeout - 2*time.Millisecond)
		if isClosed(idleClosed) {
			t.Fatal("the idle connection was closed before IdleTimeout")
		}
		time.Sleep(2 * time.Millisecond)
		if !isClosed(idleClosed) {
			t.Errorf("an idle keep-alive connection is still open after IdleTimeout (%s)", limits.IdleTimeout)
		}
	})
}

// TestMemoryBound: what the probe server's connections can cost stays
// under the 1 MiB its documentation states.
func TestMemoryBound(t *testing.T) {
	if b := limits.MemoryBound(); b >= 1<<20 {
		t.Errorf("the probe server's connections may cost %d bytes, over the 1 MiB documented", b)
	}
}
