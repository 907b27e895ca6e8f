package refresher

import (
	"context"
	"errors"
)

// Result is the outcome of one exchange and store, as an on-demand
// requester sees it.
type Result struct {
	// Changed reports whether the token on disk changed.
	Changed bool
	// Fingerprint identifies the token held after the exchange (a short
	// SHA-256 prefix, never the token); empty when there is none.
	Fingerprint string
	// Err is the exchange's or the store's failure; nil on success.
	Err error
}

// ErrNotRunning is returned by OnDemand.Refresh when no Run serves it: Run
// has not started yet, or its context ended.
var ErrNotRunning = errors.New("refresher: not running")

// OnDemand carries requests for an exchange now, from other goroutines to a
// Refresher's Run (rule 5 of the package doc). The zero value is not usable;
// make one with NewOnDemand. It is safe for concurrent use.
type OnDemand struct {
	reqs chan chan<- Result
}

// NewOnDemand returns an OnDemand for Refresher.OnDemand.
func NewOnDemand() *OnDemand {
	return &OnDemand{reqs: make(chan chan<- Result)}
}

// Refresh asks Run for an exchange now and waits for it. Requests that
// arrive while one is pending share its exchange; Run holds exchanges to
// its floor (500 ms apart by default), so a burst of requests costs the
// issuer one exchange. It returns the exchange's Result, or ctx's error when
// ctx ends first (the exchange may still happen).
func (o *OnDemand) Refresh(ctx context.Context) (Result, error) {
	reply := make(chan Result, 1)
	select {
	case o.reqs <- reply:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case res := <-reply:
		return res, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// pending collects the replies of the requests an exchange will answer.
type pending []chan<- Result

// answer sends res to every collected request and forgets them.
func (p *pending) answer(res Result) {
	for _, r := range *p {
		r <- res
	}
	*p = (*p)[:0]
}
