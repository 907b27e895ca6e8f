//go:build unix

package testkit

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// ClosedByPeer reports, without waiting, whether the other end of c (a
// TCP or Unix stream socket) has closed it: a peek finds the end of the
// stream, where an open, quiet connection has nothing to read yet. A
// server's Close completes in the kernel before it returns, so anything
// that happened after it (say, another connection being served) is a safe
// point to look. c's pending data is left in place.
//
// An in-memory connection (net.Pipe, PipeListener's) has nothing to peek:
// it is read with a deadline already past, which consumes a byte that
// waits there; a closed one refuses the deadline or reads io.EOF, an open,
// quiet one times out.
func ClosedByPeer(t testing.TB, c net.Conn) bool {
	t.Helper()
	sc, ok := c.(syscall.Conn)
	if !ok {
		// net.Pipe refuses a deadline once either end is closed.
		if err := c.SetReadDeadline(time.Now()); errors.Is(err, io.ErrClosedPipe) {
			return true
		} else if err != nil {
			t.Fatalf("ClosedByPeer: %v", err)
		}
		_, err := c.Read(make([]byte, 1))
		if err != nil && err != io.EOF && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ClosedByPeer: %v", err)
		}
		return err == io.EOF
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), make([]byte, 1), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	}); err != nil {
		t.Fatal(err)
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN):
		return false
	case errors.Is(rerr, syscall.ECONNRESET):
		return true
	case rerr != nil:
		t.Fatalf("ClosedByPeer: %v", rerr)
	}
	return n == 0
}
