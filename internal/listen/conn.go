package listen

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// capListener holds at most max connections open, closing the idlest to
// make room (see the package doc). It is safe for concurrent use.
type capListener struct {
	net.Listener
	max     int
	onState func(http.ConnState) // see Server
	onWait  func()

	mu   sync.Mutex // guards the fields below
	room sync.Cond  // signalled when room may have appeared, or on Close
	open map[*conn]struct{}
	seq  uint64 // orders the moments connections became idle
	done bool   // Close was called
}

// Accept accepts a connection and admits it: at the cap it closes the
// idlest, or waits for room while every open one serves a request.
func (l *capListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.done && len(l.open) >= l.max {
		var victim *conn // serves no request, and became idle first
		for o := range l.open {
			if !o.busy && (victim == nil || o.since < victim.since) {
				victim = o
			}
		}
		if victim != nil {
			delete(l.open, victim)
			_ = victim.Conn.Close() // its server goroutine ends on the read error
			break
		}
		if l.onWait != nil {
			l.onWait() // with l.mu held
		}
		l.room.Wait()
	}
	if l.done {
		_ = nc.Close()
		return nil, net.ErrClosed
	}
	l.seq++
	c.since = l.seq
	l.open[c] = struct{}{}
	return c, nil
}

// Close closes the listener and ends an Accept waiting for room. Calls
// after the first do nothing.
func (l *capListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	l.room.Broadcast()
	return l.Listener.Close()
}

// closeWhere closes the open connections pick chooses (with l.mu held): at
// a shutdown's start those serving no request (Shutdown would wait 5 s for
// a first one), at its end the hijacked ones, which it no longer tracks.
func (l *capListener) closeWhere(pick func(*conn) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.open {
		if pick(c) {
			_ = c.Conn.Close()
			delete(l.open, c)
		}
	}
}

// connState is the http.Server's ConnState hook. Active means the header
// has been read and the handler is about to run: the connection is busy
// until idle again; a hijacked one stays busy until closed.
func (l *capListener) connState(nc net.Conn, st http.ConnState) {
	c := nc.(*conn) // as Accept made it
	if st == http.StateIdle {
		c.scan.start()
	}
	l.mu.Lock()
	switch st {
	case http.StateActive, http.StateHijacked:
		c.busy = true
	case http.StateIdle:
		c.busy = false
		l.seq++
		c.since = l.seq
		l.room.Signal()
	}
	l.mu.Unlock()
	if l.onState != nil {
		l.onState(st)
	}
}

// conn is an admitted connection. Its slot is given back when it closes.
type conn struct {
	net.Conn
	l *capListener

	// guarded by l.mu:
	busy  bool   // serving a request, or hijacked
	since uint64 // l.seq when it connected or last became idle

	scan headerScan // see headerScan for who touches it
}

// Read reads from the connection, counting the lines of a request header
// as they pass; past the field limit it answers 431 and ends the
// connection, so an oversized header is never parsed.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.scan.feed(p[:n]) > MaxHeaderFields+1 { // +1: the request line
		c.refuse()
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("listen: too many header fields")}
	}
	return n, err
}

// refuse answers 431 itself (the server writes nothing on the connection),
// then reads the rest of the header for a moment, so that closing does not
// reset the connection before the client has read the answer.
func (c *conn) refuse() {
	const wait, drain = 500 * time.Millisecond, 64 << 10 // how long, and how many bytes, to read after the answer
	msg := tooManyFields + "\n"
	_ = c.Conn.SetWriteDeadline(time.Now().Add(wait))
	_, _ = c.Conn.Write([]byte("HTTP/1.1 431 Request Header Fields Too Large\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(msg)) + "\r\n\r\n" + msg))
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(wait))
	_, _ = io.CopyN(io.Discard, c.Conn, drain)
}

// Close closes the connection and gives its slot back. The server closes
// every connection it ends through it, and a handler a hijacked one.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	delete(c.l.open, c) // no-op after the first
	c.l.room.Signal()
	c.l.mu.Unlock()
	return err
}

// headerScan counts the lines of a request header as its bytes are read,
// from a request's start (the connection's, or its turning idle) to the
// blank line; a body is not looked at, and a pipelined request read ahead
// escapes the count (the handler checks it once parsed). The zero value
// scans a connection's first request. The server orders feed (its reading
// goroutines) and start (its state hook): it reads the next request only
// after a request's reads have ended and the connection turned idle.
type headerScan struct {
	done  bool // the blank line has passed
	lines int  // complete lines so far, the request line included
	blank bool // the current line has no byte but CR so far (never the request line)
}

func (s *headerScan) start() { *s = headerScan{} }

// feed counts the lines in b and returns the count so far (0 when done).
func (s *headerScan) feed(b []byte) int {
	if s.done {
		return 0
	}
	for _, c := range b {
		switch {
		case c == '\n' && s.blank:
			s.done = true
			return s.lines
		case c == '\n':
			s.lines++
			s.blank = true
		case c != '\r':
			s.blank = false
		}
	}
	return s.lines
}
