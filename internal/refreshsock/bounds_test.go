package refreshsock

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

func unchanged(context.Context) (bool, string, error) { return false, "abc", nil }

// post sends a keep-alive refresh request on c and wants 200.
func post(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := io.WriteString(c, "POST /v1/refresh HTTP/1.1\r\nHost: tokend\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %s", resp.Status)
	}
}

// servePipe serves the refresh socket on an in-memory listener in t's
// synctest bubble until t ends, and returns its dialler.
func servePipe(t *testing.T) func() net.Conn {
	ln := testkit.NewPipeListener()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, unchanged, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() net.Conn {
		c, err := ln.DialContext(t.Context(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// TestServeCapsConnections: held connections cannot pile up: past
// limits.MaxConns each new connection closes the idlest (one that never
// sent a request, or idle after one) and is served. In a synctest bubble, so
// that the server has turned each connection idle (the moment that
// orders it) before the next is dialled: over a real socket the client
// can read the answer and dial again before the server's state hook runs.
func TestServeCapsConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dial := servePipe(t)
		var held []net.Conn
		for i := range limits.MaxConns {
			c := dial()
			if i%2 == 0 {
				post(t, c) // idle after a request; the others never send one
			}
			synctest.Wait() // accepted, and idle again after its request
			held = append(held, c)
		}
		const extra = 8
		for range extra {
			post(t, dial())
			synctest.Wait()
		}
		for i, c := range held {
			if closed := testkit.ClosedByPeer(t, c); closed != (i < extra) {
				t.Errorf("held connection %d: closed %v, want %v (the %d idlest close)", i, closed, i < extra, extra)
			}
		}
	})
}

// TestServeClosesIdleConnections: a connection that has sent nothing is
// closed after the header timeout, an idle one after limits.IdleTimeout.
func TestServeClosesIdleConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dial := servePipe(t)
		silent, idle := dial(), dial()
		post(t, idle)
		ended := func(c net.Conn) <-chan struct{} {
			ch := make(chan struct{})
			go func() { io.Copy(io.Discard, c); close(ch) }()
			return ch
		}
		silentEnded, idleEnded := ended(silent), ended(idle)
		time.Sleep(limits.IdleTimeout + time.Second)
		synctest.Wait()
		for name, ch := range map[string]<-chan struct{}{"silent": silentEnded, "idle": idleEnded} {
			select {
			case <-ch:
			default:
				t.Errorf("the %s connection is still open after %s", name, limits.IdleTimeout+time.Second)
			}
		}
	})
}

// TestMemoryBound: what the socket's connections can cost stays under the
// 2 MiB its documentation states.
func TestMemoryBound(t *testing.T) {
	if b := limits.MemoryBound(); b >= 2<<20 {
		t.Errorf("the refresh socket's connections may cost %d bytes, over the 2 MiB documented", b)
	}
}
