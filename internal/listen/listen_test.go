package listen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testLimits are small bounds for tests; timeouts long enough never to
// fire in the tests that do not wait for them.
func testLimits(maxConns int) Limits {
	return Limits{MaxConns: maxConns, MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour}
}

// served is a running Server on a real loopback socket.
type served struct {
	addr   string
	states chan http.ConnState // every state change the listener followed
	waits  chan struct{}       // Accept holding a connection for room
}

// serve runs s on 127.0.0.1:0 until the test ends and checks that Serve
// returned nil.
func serve(t testing.TB, s *Server) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sv := &served{addr: ln.Addr().String(), states: make(chan http.ConnState, 1024), waits: make(chan struct{}, 16)}
	s.onState = func(st http.ConnState) {
		select {
		case sv.states <- st:
		default:
		}
	}
	s.onWait = func() {
		select {
		case sv.waits <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	})
	return sv
}

// await waits until the listener has followed a change to want.
func (sv *served) await(t testing.TB, want http.ConnState) {
	t.Helper()
	for st := range sv.states {
		if st == want {
			return
		}
	}
}

// client is one raw keep-alive connection.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}
}

// do sends raw (a request, or several) and reads one response.
func (c *client) do(t testing.TB, raw string) (int, string, error) {
	t.Helper()
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			return 0, "", err
		}
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// get sends a keep-alive GET and wants 200.
func (c *client) get(t testing.TB) {
	t.Helper()
	code, _, err := c.do(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET: %d, %v", code, err)
	}
}

// closed reports whether the server closed c: a read gets EOF (or a
// reset) rather than data. It blocks until one or the other.
func (c *client) closed() bool {
	_, err := c.r.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read"
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

// TestCapClosesIdlest: at the cap, a new connection closes the one idle
// longest, and is served; a connection that made a request since is kept.
func TestCapClosesIdlest(t *testing.T) {
	const max = 4
	sv := serve(t, &Server{Handler: ok, Limits: testLimits(max)})
	var cs []*client
	for range max {
		c := dial(t, sv.addr)
		c.get(t)
		sv.await(t, http.StateIdle)
		cs = append(cs, c)
	}
	extra := dial(t, sv.addr)
	extra.get(t)
	if !cs[0].closed() {
		t.Fatal("the idlest connection was not closed")
	}
	cs[1].get(t) // now the most recently active
	sv.await(t, http.StateIdle)
	sv.await(t, http.StateIdle) // extra's
	another := dial(t, sv.addr)
	another.get(t)
	if !cs[2].closed() {
		t.Fatal("the connection idle longest after one made a request was not closed")
	}
	cs[1].get(t)
	cs[3].get(t)
}

// TestCapClosesSlowHeader: a connection that never finishes its header is
// idle too, and the one connected longest ago is closed first.
func TestCapClosesSlowHeader(t *testing.T) {
	sv := serve(t, &Server{Handler: ok, Limits: testLimits(2)})
	slow := dial(t, sv.addr)
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	busy := dial(t, sv.addr)
	busy.get(t)
	sv.await(t, http.StateIdle)
	late := dial(t, sv.addr)
	late.get(t)
	if !slow.closed() {
		t.Fatal("the connection sending its header slowly was not closed")
	}
	busy.get(t)
}

// TestCapWaitsWhenAllBusy: when every connection is serving a request, a
// new one is held, unread, until one of them ends; none is cut.
func TestCapWaitsWhenAllBusy(t *testing.T) {
	entered, release := make(chan struct{}, 8), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	sv := serve(t, &Server{Handler: h, Limits: testLimits(2)})
	a, b := dial(t, sv.addr), dial(t, sv.addr)
	for _, c := range []*client{a, b} {
		io.WriteString(c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
		<-entered
	}
	late := dial(t, sv.addr)
	io.WriteString(late, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-sv.waits
	select {
	case <-entered:
		t.Fatal("a request was served past the cap")
	default:
	}
	close(release)
	for _, c := range []*client{a, b, late} {
		if code, _, err := c.do(t, ""); err != nil || code != http.StatusOK {
			t.Fatalf("after room appeared: %d, %v", code, err)
		}
	}
}

// header returns a GET with n header fields.
func header(n int) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
	for i := 1; i < n; i++ { // Host is one
		fmt.Fprintf(&b, "X-F%d: v\r\n", i)
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestHeaderFields: at most MaxHeaderFields fields; beyond, 431, whether
// the header is refused as it arrives or (pipelined) once parsed; body
// lines are not counted.
func TestHeaderFields(t *testing.T) {
	sv := serve(t, &Server{Handler: ok, Limits: testLimits(8)})
	body := strings.Repeat("\n", 500)
	post := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
	for _, tc := range []struct {
		name   string
		first  string // sent and answered 200 first on the same connection, when set
		raw    string
		want   int
		closed bool
	}{
		{"100 fields", "", header(100), http.StatusOK, false},
		{"101 fields", "", header(101), http.StatusRequestHeaderFieldsTooLarge, true},
		{"5000 fields", "", header(5000), http.StatusRequestHeaderFieldsTooLarge, true},
		{"101 fields, second request", header(3), header(101), http.StatusRequestHeaderFieldsTooLarge, true},
		{"body lines are not fields", "", post, http.StatusOK, false},
		{"after a body", post, header(100), http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, sv.addr)
			if tc.first != "" {
				if code, _, err := c.do(t, tc.first); code != http.StatusOK || err != nil {
					t.Fatalf("first request: %d, %v", code, err)
				}
			}
			code, body, err := c.do(t, tc.raw)
			if err != nil || code != tc.want {
				t.Fatalf("status %d (%v), want %d", code, err, tc.want)
			}
			if code == http.StatusRequestHeaderFieldsTooLarge && !strings.Contains(body, "at most 100") {
				t.Errorf("431 body %q does not say the limit", body)
			}
			if tc.closed && !c.closed() {
				t.Error("the connection stayed open after a 431")
			}
		})
	}
	t.Run("pipelined second request is refused once parsed", func(t *testing.T) {
		c := dial(t, sv.addr)
		if code, _, err := c.do(t, header(2)+header(150)); err != nil || code != http.StatusOK {
			t.Fatalf("first: %d, %v", code, err)
		}
		if code, _, err := c.do(t, ""); err != nil || code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("pipelined second: %d, %v, want 431", code, err)
		}
	})
}

// TestMemoryBound: the bound adds up what it says.
func TestMemoryBound(t *testing.T) {
	l := Limits{MaxConns: 10, MaxHeaderBytes: 4 << 10}
	want := int64(10 * (ConnBytes + 2*(8<<10) + 100*FieldBytes))
	if got := l.MemoryBound(); got != want {
		t.Errorf("MemoryBound = %d, want %d", got, want)
	}
}

// TestServeRefusesBadLimits: missing bounds are an error naming them.
func TestServeRefusesBadLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = (&Server{Handler: ok}).Serve(t.Context(), ln)
	if err == nil || !strings.Contains(err.Error(), "MaxConns") {
		t.Fatalf("Serve with no limits: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the listener was left open: %v", err)
	}
}

// TestHeaderScan: the scan counts a header's lines however its bytes are
// split across reads, CRLF or bare LF, stops at the blank line, and
// restarts with start.
func TestHeaderScan(t *testing.T) {
	crlf := "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\nbody\nmore\n\n\n"
	lf := strings.ReplaceAll(crlf, "\r\n", "\n")
	for _, raw := range []string{crlf, lf} {
		for _, chunk := range []int{1, 2, 3, 7, len(raw)} {
			var s headerScan
			s.start()
			most := 0
			for b := []byte(raw); len(b) > 0; {
				n := min(chunk, len(b))
				most = max(most, s.feed(b[:n]))
				b = b[n:]
			}
			if most != 3 {
				t.Errorf("%q in chunks of %d: counted %d lines, want 3", raw, chunk, most)
			}
			if got := s.feed([]byte("X: 1\nY: 2\n")); got != 0 {
				t.Errorf("after the blank line, feed counted %d", got)
			}
			s.start()
			if got := s.feed([]byte("GET / HTTP/1.1\r\nA: 1\r\n")); got != 2 {
				t.Errorf("after start, feed counted %d, want 2", got)
			}
		}
	}
}
