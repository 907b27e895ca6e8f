package health

import (
	"net"
	"sync"
)

// MaxConns caps the probe server's open connections. The kubelet opens one
// connection per probe and Prometheus keeps one alive, so a handful are in
// use at a time; the cap bounds what a flood from the pod network can
// cost. Past it, Accept waits: further clients queue in the kernel's
// accept backlog and hold none of tokend's descriptors. So the health side
// holds at most MaxConns+1 descriptors, and the refresh loop (token and
// status files, their directory, the directory watch, two or three
// connections to the control plane, the runtime's own) keeps the rest:
// any descriptor limit of 64 or more leaves it room. Go raises the soft
// limit to the hard one at start.
//
// Each open connection costs a goroutine and about 8 KiB of buffers while
// idle, more while /metrics is written; 250 such connections took tokend
// past its 32Mi memory limit, 16 stay well inside it.
const MaxConns = 16

// limitListener accepts at most n connections at a time: Accept waits for
// an accepted connection to close before it accepts another. It is safe for
// concurrent use.
type limitListener struct {
	net.Listener
	slots chan struct{} // one token per open connection
	done  chan struct{} // closed by Close
	once  sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
