package fakeissuer

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// script is the fault queue and request counter that both issuers embed.
type script struct {
	faultsMu sync.Mutex // guards faults
	faults   []Fault
	requests atomic.Int64
}

// Push queues faults; each answers exactly one future request, in order.
func (s *script) Push(f ...Fault) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.faults = append(s.faults, f...)
}

// Requests returns how many requests reached the issuer.
func (s *script) Requests() int64 { return s.requests.Load() }

// serveFault counts the request and, when a fault is queued, answers the
// request with it and reports true.
func (s *script) serveFault(w http.ResponseWriter, r *http.Request) bool {
	s.requests.Add(1)
	s.faultsMu.Lock()
	var f Fault
	if len(s.faults) > 0 {
		f, s.faults = s.faults[0], s.faults[1:]
	}
	s.faultsMu.Unlock()
	if f == nil {
		return false
	}
	f(w, r)
	return true
}

// front answers what every issuer answers alike: a queued fault, GET
// /healthz, 404 for any path but /token, and 405 for a method other than
// method (none checked when method is empty). It reports whether it
// answered; the caller serves /token otherwise.
func (s *script) front(w http.ResponseWriter, r *http.Request, method string) bool {
	if s.serveFault(w, r) {
		return true
	}
	switch r.URL.Path {
	case "/healthz":
		plain(w, http.StatusOK, "ok")
		return true
	case "/token":
	default:
		http.NotFound(w, r)
		return true
	}
	if method != "" && r.Method != method {
		plain(w, http.StatusMethodNotAllowed, "method not allowed")
		return true
	}
	return false
}
