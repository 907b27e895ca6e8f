// Package fleetsim simulates a fleet of tokend sidecars against one token
// issuer, to measure what a refresh schedule does to the issuer and to the
// pods: request rate per second, wasted exchanges, and time spent holding an
// expired token.
//
// Each pod runs the real refresher.Refresher (not a copy of its rules)
// against an in-memory Issuer. A simulation only makes sense inside a
// testing/synctest bubble, whose fake clock lets ten thousand pods live an
// hour in seconds of real time; outside one it would take that hour.
package fleetsim

import (
	"context"
	"fmt"
	"sync"
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
	// ReuseFloor, when positive, makes the issuer hand every caller the same
	// cached token until fewer than ReuseFloor of its life remain, as the
	// deployed control plane does with 30 s (protocol.md, section 1). Zero
	// mints a fresh token per request, with expires_at.
	ReuseFloor time.Duration
	// Workers and Service bound the issuer's capacity: at most Workers
	// requests are served at once, each taking Service; others queue. Zero
	// Workers means unbounded and instant.
	Workers int
	Service time.Duration
}

// Issuer is an in-memory token endpoint following a Model. It is safe for
// concurrent use and records every request for the report.
type Issuer struct {
	m     Model
	start time.Time
	slots chan struct{}

	mu       sync.Mutex // guards the fields below
	minted   int
	current  exchange.Token
	buckets  map[int64]int // requests per second since start
	requests int
}

// NewIssuer returns an Issuer for m whose clock starts now.
func NewIssuer(m Model) *Issuer {
	is := &Issuer{m: m, start: time.Now(), buckets: map[int64]int{}}
	if m.Workers > 0 {
		is.slots = make(chan struct{}, m.Workers)
	}
	return is
}

// Exchange serves one request: it waits for a worker when capacity is
// bounded, then answers as the model says.
func (is *Issuer) Exchange(ctx context.Context) (exchange.Token, error) {
	is.mu.Lock()
	is.requests++
	is.buckets[int64(time.Since(is.start)/time.Second)]++
	is.mu.Unlock()
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
	now := time.Now()
	if is.m.ReuseFloor > 0 && is.minted > 0 && is.current.Expiry.Sub(now) >= is.m.ReuseFloor {
		return is.current, nil
	}
	is.minted++
	is.current = exchange.Token{
		Value:        secret.New(fmt.Sprintf("tok-%d", is.minted)),
		Expiry:       now.Add(is.m.Lifetime),
		ExpirySource: "expires_at",
	}
	return is.current, nil
}

// rates returns the mean and peak requests per second over [from, to)
// seconds since the issuer's start.
func (is *Issuer) rates(from, to int64) (mean float64, peak int) {
	is.mu.Lock()
	defer is.mu.Unlock()
	total := 0
	for s := from; s < to; s++ {
		n := is.buckets[s]
		total += n
		peak = max(peak, n)
	}
	return float64(total) / float64(to-from), peak
}
