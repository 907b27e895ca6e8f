package refresher

import (
	"context"
	"errors"
	"sync"
)

// Result is the outcome of one exchange and store, as an on-demand
// requester sees it.
type Result struct {
	// Changed reports whether the stored token changed.
	Changed bool
	// Fingerprint identifies the token held after the exchange (a short
	// SHA-256 prefix, never the token); empty when there is none.
	Fingerprint string
	// Err is the exchange's or the store's failure; nil on success.
	Err error
}

// ErrNotRunning is returned by OnDemand.Refresh once a Run that served it
// has ended (a request made before Run starts waits for it).
var ErrNotRunning = errors.New("refresher: not running")

// OnDemand carries requests for an exchange now, from other goroutines to a
// Refresher's Run (rule 6 of the package doc). The zero value is not usable;
// make one with NewOnDemand. It is safe for concurrent use.
// One OnDemand serves one Run: once that Run ends, every request, the ones
// it took but had not answered included, ends with ErrNotRunning.
type OnDemand struct {
	reqs  chan chan<- Result
	ended chan struct{} // closed when the Run that served reqs ended
	end   func()        // closes ended, once
}

// NewOnDemand returns an OnDemand for Refresher.OnDemand.
func NewOnDemand() *OnDemand {
	ended := make(chan struct{})
	return &OnDemand{reqs: make(chan chan<- Result), ended: ended, end: sync.OnceFunc(func() { close(ended) })}
}

// Refresh asks Run for an exchange now and waits for it. Requests that
// arrive while one is pending share its exchange; Run holds exchanges to
// its floor (500 ms apart by default), so a burst of requests costs the
// issuer one exchange. It returns the exchange's Result, ErrNotRunning
// when Run ended first, or ctx's error when ctx ends first (the exchange
// may still happen).
func (o *OnDemand) Refresh(ctx context.Context) (Result, error) {
	reply := make(chan Result, 1)
	select {
	case o.reqs <- reply:
	case <-o.ended:
		return Result{}, ErrNotRunning
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case res := <-reply:
		return res, nil
	case <-o.ended:
		select {
		case res := <-reply: // answered as Run ended
			return res, nil
		default:
			return Result{}, ErrNotRunning
		}
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}
