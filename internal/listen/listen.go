// Package listen serves HTTP within stated bounds on every listener tokend
// opens (the probe server, the credential proxy, the refresh socket), so
// that no client, in the pod or on the pod network, can exhaust tokend's
// memory, descriptors or goroutines by holding connections open:
//
//   - At most Limits.MaxConns connections are open at once. One that
//     arrives at the cap closes the idlest: of those serving no request
//     (idle keep-alive, or still sending its header), the one whose last
//     request ended, or that connected, longest ago. When all are serving
//     a request, the new one waits, accepted but unread, until one ends;
//     further clients queue in the kernel's accept backlog.
//   - A request's header must arrive within Limits.ReadHeaderTimeout and
//     hold at most Limits.MaxHeaderBytes and MaxHeaderFields fields (431
//     beyond), the fields counted as they arrive, before parsing.
//   - A keep-alive connection is closed after Limits.IdleTimeout idle.
//
// So the connections cost at most Limits.MemoryBound, whatever the
// clients do; what a handler holds for a request is its own to bound.
package listen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// MaxHeaderFields bounds a request's header fields; more get 431.
const MaxHeaderFields = 100

// Per-connection costs that MemoryBound adds up, in bytes; measured by
// BenchmarkHeldConns (heap and stacks of the serving side).
const (
	// ConnBytes is what an open connection costs while it waits for a
	// request: the serving goroutine's stack, the 4 KiB read and write
	// buffers, and the server's and the runtime's records of it.
	// Measured: 18 to 21 KiB, the client's socket included.
	ConnBytes = 24 << 10
	// FieldBytes is the parsed form of one header field beyond its bytes:
	// the map entry, the value slice and the strings' headers.
	FieldBytes = 128
)

// Limits bounds one listener. MaxConns, MaxHeaderBytes, ReadHeaderTimeout
// and IdleTimeout are required; a zero timeout among the others means
// none. Limits is a plain value, safe to copy.
type Limits struct {
	// MaxConns is the most connections open at once.
	MaxConns int
	// MaxHeaderBytes bounds a request's line and header as
	// http.Server.MaxHeaderBytes does (with 4 KiB of slack); beyond, 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading a request's header.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading a whole request; zero (streams): none.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; zero (streams): none.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown when Serve's context
	// ends: requests still running after it are cut. Zero means 5 s.
	ShutdownTimeout time.Duration
}

// MemoryBound is the most the open connections cost, in bytes, whatever
// their clients send: MaxConns connections, each waiting (ConnBytes) and
// holding a request header of the greatest size (its bytes, read and
// parsed) and field count. What a handler allocates for a request is not
// included.
func (l Limits) MemoryBound() int64 {
	header := int64(l.MaxHeaderBytes) + 4<<10 // net/http's slack
	perConn := ConnBytes + 2*header + MaxHeaderFields*FieldBytes
	return int64(l.MaxConns) * perConn
}

// Server serves one handler within Limits. Set its fields before Serve;
// Serve may be called once.
type Server struct {
	// Handler answers the requests.
	Handler http.Handler
	// Limits bounds the connections and requests.
	Limits Limits
	// ErrorLog receives the HTTP server's own errors (failed accepts, bad
	// requests); nil: the log package's standard logger.
	ErrorLog *log.Logger

	// Tests wait on these for the listener's decisions; nil: none.
	onState func(http.ConnState) // after the listener followed a state change
	onWait  func()               // Accept holds a connection until room appears
}

// Serve serves on ln until ctx ends, then stops accepting, closes the
// connections that serve no request, lets the requests in progress finish
// for up to Limits.ShutdownTimeout and cuts what is left (open streams,
// hijacked connections included). Requests' contexts carry ctx's values
// but do not end with it. Serve closes ln and returns nil when ctx ended,
// or the error that stopped the server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	lim := s.Limits
	if lim.MaxConns <= 0 || lim.MaxHeaderBytes <= 0 || lim.ReadHeaderTimeout <= 0 || lim.IdleTimeout <= 0 {
		_ = ln.Close()
		return errors.New("listen: MaxConns, MaxHeaderBytes, ReadHeaderTimeout and IdleTimeout must be positive: set each listener's bounds")
	}
	cl := &capListener{Listener: ln, max: lim.MaxConns, onState: s.onState, onWait: s.onWait, open: make(map[*conn]struct{})}
	cl.room.L = &cl.mu
	srv := &http.Server{
		Handler:           fieldLimit(s.Handler),
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		ErrorLog:          s.ErrorLog,
		ConnState:         cl.connState,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(cl) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(lim.ShutdownTimeout, 5*time.Second))
	defer cancel()
	_ = cl.Close() // no new connections; then no waiting on idle ones
	cl.closeWhere(func(c *conn) bool { return !c.busy })
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc                                          // http.ErrServerClosed
	cl.closeWhere(func(*conn) bool { return true }) // what is left is hijacked
	return nil
}

// fieldLimit answers 431 to a request with more than max header fields.
// The connection's scan refuses most such requests before they are
// parsed; this catches a pipelined request whose header was read ahead.
func fieldLimit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		for _, v := range r.Header {
			n += len(v)
		}
		if n > MaxHeaderFields {
			w.Header().Set("Connection", "close")
			http.Error(w, tooManyFields, http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		h.ServeHTTP(w, r)
	})
}

var tooManyFields = "the request has more than " + strconv.Itoa(MaxHeaderFields) + " header fields: send at most " + strconv.Itoa(MaxHeaderFields)

// Unix listens on a Unix socket at path with mode (connecting needs write
// permission). A socket that a stopped process left there is removed
// first; anything else there, a socket another process still serves, or a
// path over the 107 bytes a socket path may have is refused. Closing the
// listener removes the socket. Errors name setting, the flag that gave
// path, and say the fix.
func Unix(path string, mode fs.FileMode, setting string) (*net.UnixListener, error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("%s %s is longer than the 107 bytes a socket path may have: choose a shorter path", setting, path)
	}
	switch fi, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w: choose a path in a writable directory", setting, path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("%s %s exists and is not a socket: remove it or choose another path", setting, path)
	default:
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s %s is served by another process (a second tokend?): give each tokend its own path", setting, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: cannot remove the stale socket: %w: remove it or choose another path", setting, path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: choose a path in a writable directory", setting, path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s %s: %w: choose a path in a directory tokend owns", setting, path, err)
	}
	return ln, nil
}
