// Package fleetsim simulates a fleet of tokend sidecars against token
// issuers, to measure what a refresh schedule does to the issuer and to the
// pods: requests per second against the least peak any schedule could have,
// wasted exchanges, and time spent holding an expired token against the
// least possible.
//
// Each pod runs the real refresher.Refresher (not a copy of its rules)
// against an in-memory Issuer. A simulation only makes sense inside a
// testing/synctest bubble, whose fake clock lets ten thousand pods live an
// hour in seconds of real time; outside one it would take that hour.
package fleetsim

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// Model describes an issuer.
type Model struct {
	// Name labels the model in reports.
	Name string
	// Lifetime is how long a freshly minted token lives.
	Lifetime time.Duration
	// ReuseFloor, when positive, makes the issuer hand every caller the
	// same cached token until fewer than ReuseFloor of its life remain, as
	// the deployed control plane does with 30 s. Zero mints a fresh token
	// per request, with expires_at, as the successor control plane does; so
	// does a ReuseFloor of Lifetime or more.
	ReuseFloor time.Duration
	// Capacity, when positive, is how many requests the issuer serves in
	// each second since its start; it answers the others 429 Too Many
	// Requests with RetryAfter (none when zero).
	Capacity   int
	RetryAfter time.Duration
	// DownAt and DownFor, when DownFor is positive, make the issuer
	// unreachable (connection refused) from DownAt after its start for
	// DownFor; with DownRetryAfter set, a gateway answers 503 Service
	// Unavailable with that Retry-After instead.
	DownAt, DownFor time.Duration
	DownRetryAfter  time.Duration
	// Workers and Service bound the issuer's capacity by queueing: at most
	// Workers requests are served at once, each taking Service; others
	// wait. Zero Workers means unbounded and instant.
	Workers int
	Service time.Duration
}

// Shared reports whether pods share the issuer's tokens: it reuses a
// cached token for part of its life.
func (m Model) Shared() bool { return m.ReuseFloor > 0 && m.ReuseFloor < m.Lifetime }

// Usable is the part of the reuse window in which a pod can ask for the
// next shared token and keep time for a retry: five sixths of it (25 s of
// the deployed 30 s). Zero for a model whose tokens are not shared.
func (m Model) Usable() time.Duration {
	if !m.Shared() {
		return 0
	}
	return m.ReuseFloor * 5 / 6
}

// front counts every request that reaches the issuers behind it, per
// second since the simulation's start: the load one control plane sees.
type front struct {
	start time.Time

	mu       sync.Mutex    // guards the fields below
	buckets  map[int64]int // requests per second since start
	requests int
}

func newFront() *front { return &front{start: time.Now(), buckets: map[int64]int{}} }

func (f *front) record() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.buckets[int64(time.Since(f.start)/time.Second)]++
}

// rates returns the mean and peak requests per second over [from, to)
// seconds since the start.
func (f *front) rates(from, to int64) (mean float64, peak int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if to <= from {
		return 0, 0
	}
	total := 0
	for s := from; s < to; s++ {
		n := f.buckets[s]
		total += n
		peak = max(peak, n)
	}
	return float64(total) / float64(to-from), peak
}

// minting is one token an Issuer minted: when, and when it expires.
type minting struct{ at, expiry time.Time }

// Issuer is an in-memory token endpoint following a Model. It is safe for
// concurrent use and records every request for the report.
type Issuer struct {
	m     Model
	front *front
	slots chan struct{}

	mu      sync.Mutex // guards the fields below
	current exchange.Token
	mints   []minting
	served  map[int64]int // requests served per second, when Capacity is set
}

func newIssuer(m Model, f *front) *Issuer {
	is := &Issuer{m: m, front: f, served: map[int64]int{}}
	if m.Workers > 0 {
		is.slots = make(chan struct{}, m.Workers)
	}
	return is
}

// ErrRefused is the transport error of an issuer that is down.
var ErrRefused = fmt.Errorf("fleetsim: dial: %w", syscall.ECONNREFUSED)

// Exchange serves one request: it fails while the issuer is down, refuses
// it above capacity, waits for a worker when capacity is bounded by
// workers, then answers as the model says.
func (is *Issuer) Exchange(ctx context.Context) (exchange.Token, error) {
	is.front.record()
	since := time.Since(is.front.start)
	if m := is.m; m.DownFor > 0 && since >= m.DownAt && since < m.DownAt+m.DownFor {
		if m.DownRetryAfter > 0 {
			return exchange.Token{}, &exchange.StatusError{StatusCode: http.StatusServiceUnavailable, RetryAfter: m.DownRetryAfter}
		}
		return exchange.Token{}, ErrRefused
	}
	if is.slots != nil {
		select {
		case is.slots <- struct{}{}:
		case <-ctx.Done():
			return exchange.Token{}, ctx.Err()
		}
		time.Sleep(is.m.Service)
		<-is.slots
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if c := is.m.Capacity; c > 0 {
		sec := int64(since / time.Second)
		if is.served[sec] >= c {
			return exchange.Token{}, &exchange.StatusError{StatusCode: http.StatusTooManyRequests, RetryAfter: is.m.RetryAfter}
		}
		is.served[sec]++
	}
	now := time.Now()
	if is.m.ReuseFloor > 0 && len(is.mints) > 0 && is.current.Expiry.Sub(now) >= is.m.ReuseFloor {
		return is.current, nil
	}
	is.mints = append(is.mints, minting{at: now, expiry: now.Add(is.m.Lifetime)})
	is.current = exchange.Token{
		Value:        secret.New(fmt.Sprintf("tok-%d", len(is.mints))),
		Expiry:       now.Add(is.m.Lifetime),
		ExpirySource: "expires_at",
	}
	return is.current, nil
}

// bestAt returns the latest expiry a pod could hold at t: that of the
// token the issuer would hand out at t, had it been asked.
func (is *Issuer) bestAt(t time.Time) time.Time {
	is.mu.Lock()
	defer is.mu.Unlock()
	fresh := t.Add(is.m.Lifetime)
	if !is.m.Shared() {
		return fresh
	}
	for i := len(is.mints) - 1; i >= 0; i-- {
		if mt := is.mints[i]; !mt.at.After(t) {
			if mt.expiry.Sub(t) >= is.m.ReuseFloor {
				return mt.expiry
			}
			return fresh
		}
	}
	return fresh
}

// expiries returns the expiry of every token minted, in order.
func (is *Issuer) expiries() []time.Time {
	is.mu.Lock()
	defer is.mu.Unlock()
	out := make([]time.Time, len(is.mints))
	for i, mt := range is.mints {
		out[i] = mt.expiry
	}
	return out
}
