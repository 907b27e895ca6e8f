// Package standin is the world outside the node of scripts/e2e-kubelet.sh:
// the control plane's token endpoint, which the end-to-end driver makes
// reachable, unreachable or refusing at chosen moments, and the platform's
// API server, which tokend's credential proxy forwards to.
//
// Both serve on fixed loopback ports of the node's own network namespace,
// the ports the rendered manifests name (8080 and 8443): nothing else
// listens there. They log each request's outcome, with token fingerprints
// only, never a token.
package standin

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/fakeissuer"
)

// State is what the control plane does with a request.
type State int

const (
	// Down: nothing listens on the address; a connection is refused.
	Down State = iota
	// Up: the control plane answers as deployed (protocol.md section 1).
	Up
	// Refusing: it answers every token request 403, as for a session id
	// it rejects.
	Refusing
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Refusing:
		return "refusing"
	}
	return "down"
}

// ControlPlane serves the encrypted-session token endpoint on one address
// while it is Up or Refusing, and closes the listener and every open
// connection while it is Down. The key stays the same across the changes,
// so the public key in the pods stays valid. Its methods are safe for
// concurrent use.
type ControlPlane struct {
	Issuer *fakeissuer.Issuer
	Log    *slog.Logger

	mu    sync.Mutex // guards addr, state, srv, done, served
	addr  string
	state State
	srv   *http.Server
	done  chan struct{}
	// served are the fingerprints of the tokens handed out, in order.
	served []string
}

// NewControlPlane returns a control plane, Down, that will serve on addr
// (host:port; port 0 picks a free port the first time, kept afterwards)
// tokens signed with key, living lifetime, each handed out until fewer
// than floor remain on it.
func NewControlPlane(addr string, key *rsa.PrivateKey, lifetime, floor time.Duration, log *slog.Logger) *ControlPlane {
	return &ControlPlane{addr: addr, Issuer: &fakeissuer.Issuer{Key: key, Lifetime: lifetime, CacheFloor: floor}, Log: log}
}

// Set changes the state; it returns when the change is in effect: the
// address listens (Up, Refusing) or no longer does (Down).
func (c *ControlPlane) Set(s State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != Down && c.srv == nil {
		ln, err := net.Listen("tcp", c.addr)
		if err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
		c.addr = ln.Addr().String()
		c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
		c.done = make(chan struct{})
		go func(srv *http.Server, done chan struct{}) {
			defer close(done)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				c.Log.Error("control plane stopped", "error", err)
			}
		}(c.srv, c.done)
	}
	if s == Down && c.srv != nil {
		err := c.srv.Close() // the listener and every connection, at once
		<-c.done
		c.srv = nil
		if err != nil {
			return fmt.Errorf("control plane: %w", err)
		}
	}
	c.Log.Info("control plane", "state", s.String(), "was", c.state.String())
	c.state = s
	return nil
}

// Addr returns the address it serves on: host:port, the port chosen once
// it has been Up.
func (c *ControlPlane) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// State returns the current state.
func (c *ControlPlane) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Rotate makes the next token request mint a new token.
func (c *ControlPlane) Rotate() { c.Issuer.Rotate() }

// Served returns the fingerprints of the tokens handed out so far, each
// once, in the order first handed out.
func (c *ControlPlane) Served() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.served...)
}

// Close stops serving.
func (c *ControlPlane) Close() error { return c.Set(Down) }

func (c *ControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.State() == Refusing && r.URL.Path == "/token" {
		http.Error(w, "session rejected", http.StatusForbidden)
		c.Log.Info("token request", "status", http.StatusForbidden, "state", Refusing.String())
		return
	}
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	c.Issuer.ServeHTTP(rec, r)
	var answer struct {
		Token string `json:"token"`
	}
	fp := ""
	if rec.status == http.StatusOK && json.Unmarshal(rec.body.Bytes(), &answer) == nil && answer.Token != "" {
		fp = secret.Fingerprint(answer.Token)
		c.mu.Lock()
		if !slices.Contains(c.served, fp) {
			c.served = append(c.served, fp)
		}
		c.mu.Unlock()
	}
	c.Log.Info("token request", "path", r.URL.Path, "status", rec.status, "fingerprint", fp)
}

// recorder keeps the status and the body of an answer.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.body.Len() < 64<<10 {
		r.body.Write(p)
	}
	return r.ResponseWriter.Write(p)
}
