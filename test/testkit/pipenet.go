package testkit

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
)

// PipeListener is an in-memory net.Listener whose connections are the
// server ends of net.Pipe pairs; DialContext returns the client ends. Inside
// a testing/synctest bubble a goroutine blocked on such a connection is
// durably blocked, so the bubble's clock advances past deadlines exactly.
// Create it inside the bubble that uses it. Safe for concurrent use.
type PipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewPipeListener returns an open PipeListener.
func NewPipeListener() *PipeListener {
	return &PipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for a DialContext and returns the server end.
func (l *PipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and DialContext fail with net.ErrClosed.
func (l *PipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *PipeListener) Addr() net.Addr { return pipeAddr{} }

// DialContext connects to the listener, whatever network and address say;
// it has the signature of http.Transport's DialContext. The client end
// reads ahead, as a socket's buffer does, so that a server's write never
// waits on a client that is itself writing (a TLS client refusing the
// server's certificate in the middle of the server's flight).
func (l *PipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return newReadAhead(client), nil
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: net.ErrClosed}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// PipeServer serves h on a new PipeListener, over TLS with ServerCert when
// tlsConfig is not nil (its Certificates are filled in), and returns the
// listener. The server is closed when the test ends. Call it inside the
// synctest bubble of the test.
func PipeServer(t testing.TB, h http.Handler, tlsConfig *tls.Config) *PipeListener {
	t.Helper()
	l := NewPipeListener()
	var ln net.Listener = l
	if tlsConfig != nil {
		tlsConfig = tlsConfig.Clone()
		tlsConfig.Certificates = []tls.Certificate{ServerCert().TLS}
		ln = tls.NewListener(l, tlsConfig)
	}
	srv := &http.Server{Handler: h, ErrorLog: discardLog}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l
}

// PipeClient returns a copy of c whose transport reaches l instead of the
// network. When plain is true, https requests skip TLS (the transport takes
// the pipe for an established TLS connection), for tests whose subject is
// not TLS. c's Transport must be an *http.Transport.
func PipeClient(c *http.Client, l *PipeListener, plain bool) *http.Client {
	tr := c.Transport.(*http.Transport).Clone()
	tr.DialContext = l.DialContext
	if plain {
		tr.DialTLSContext = l.DialContext
	}
	out := *c
	out.Transport = tr
	return &out
}

// readAhead is a connection whose incoming bytes a goroutine reads as
// they come, until the connection fails. Read deadlines are not kept.
type readAhead struct {
	net.Conn
	in     chan []byte
	rest   []byte
	err    error         // set before in is closed
	closed chan struct{} // closed by Close, which ends the goroutine
	once   sync.Once
}

func newReadAhead(c net.Conn) *readAhead {
	r := &readAhead{Conn: c, in: make(chan []byte, 64), closed: make(chan struct{})}
	go func() {
		defer close(r.in)
		for {
			buf := make([]byte, 16<<10)
			n, err := c.Read(buf)
			if n > 0 {
				select {
				case r.in <- buf[:n]:
				case <-r.closed:
					r.err = net.ErrClosed
					return
				}
			}
			if err != nil {
				r.err = err
				return
			}
		}
	}()
	return r
}

// Close closes the connection and ends the reading goroutine.
func (r *readAhead) Close() error {
	r.once.Do(func() { close(r.closed) })
	return r.Conn.Close()
}

func (r *readAhead) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		b, ok := <-r.in
		if !ok {
			return 0, r.err
		}
		r.rest = b
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}
