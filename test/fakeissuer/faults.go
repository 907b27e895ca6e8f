package fakeissuer

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status answers with the given status and a text/plain body. Extra header
// pairs (name, value, ...) are set first, e.g. "Retry-After", "3".
func Status(code int, header ...string) Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		plain(w, code, http.StatusText(code))
	}
}

// Body answers 200 with the given body and content type application/json.
func Body(body string) Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, body)
	}
}

// Redirect answers 302 to location.
func Redirect(location string) Fault {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, location, http.StatusFound)
	}
}

// Hang answers nothing until the client gives up (its request context ends)
// or release is closed; release may be nil.
func Hang(release <-chan struct{}) Fault {
	return func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// ResetMidBody answers 200 with headers that announce a longer JSON body,
// sends the first part of it, then resets the connection (RST, not FIN).
func ResetMidBody() Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"token\":\"eyJhbGciOi")
		_ = buf.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
}

// ResetBeforeAnswer resets the connection (RST) without answering: an
// issuer that crashed while the request was in flight.
func ResetBeforeAnswer() Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}
}

// SlowBody answers 200 with body, flushing it in chunks of n bytes with a
// pause of every between them, and stops early when the client goes away.
func SlowBody(body string, n int, every time.Duration) Fault {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		// Each request sends the whole body: rest is its own.
		for rest := body; len(rest) > 0; {
			k := min(n, len(rest))
			if _, err := io.WriteString(w, rest[:k]); err != nil {
				return
			}
			_ = rc.Flush()
			rest = rest[k:]
			select {
			case <-r.Context().Done():
				return
			case <-time.After(every):
			}
		}
	}
}

// Oversized answers 200 with a JSON body of about n bytes whose token alone
// exceeds any limit a client should accept, streamed without buffering it.
func Oversized(n int) Fault {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token":"`)
		chunk := strings.Repeat("A", 4096)
		for written := 0; written < n; written += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
	}
}

// Hit is one request seen by an Outage.
type Hit struct {
	// At is when the request arrived.
	At time.Time
	// Faulted reports whether the outage's fault answered it.
	Faulted bool
}

// Outage wraps a handler (normally an *Issuer) and, between Start and End,
// answers every request with one fault instead: a control plane that is
// down for a while, as opposed to Push's one-request faults. It records
// every request's arrival. Set Next before serving; the methods are safe
// for concurrent use.
type Outage struct {
	// Next serves requests while no outage is in progress.
	Next http.Handler

	mu    sync.Mutex // guards fault, hits
	fault Fault
	hits  []Hit
}

// Start makes f answer every request from now until End.
func (o *Outage) Start(f Fault) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fault = f
}

// End restores normal service and returns the time it did so.
func (o *Outage) End() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fault = nil
	return time.Now()
}

// Hits returns the requests seen so far, in order of arrival.
func (o *Outage) Hits() []Hit {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Hit(nil), o.hits...)
}

func (o *Outage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	f := o.fault
	o.hits = append(o.hits, Hit{At: time.Now(), Faulted: f != nil})
	o.mu.Unlock()
	if f != nil {
		f(w, r)
		return
	}
	o.Next.ServeHTTP(w, r)
}
