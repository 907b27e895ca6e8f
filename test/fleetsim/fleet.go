package fleetsim

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
)

// Fleet describes the pods of a simulation.
type Fleet struct {
	// Pods is how many sidecars run, split evenly over the issuers.
	Pods int
	// StartSpread spreads the pods' starts uniformly over this long.
	StartSpread time.Duration
	// Duration is how long the simulation runs after the first start; the
	// report's rates cover the time after StartSpread.
	Duration time.Duration
	// Seed makes a run repeatable.
	Seed uint64
	// Interval and MaxBackoff are each pod's settings, given to its
	// Refresher as tokend's daemon gives them; zero leaves the refresher's
	// defaults.
	Interval, MaxBackoff time.Duration
	// RestartAt and RestartSpread, when RestartSpread is positive, restart
	// every pod once (a rolling restart): each at a random time in
	// [RestartAt, RestartAt+RestartSpread), with a new Refresher that
	// knows nothing of the issuer and exchanges at once.
	RestartAt, RestartSpread time.Duration
	// BlindEvery, when positive, replaces the Refresher with the seed's
	// in-process client: one exchange every BlindEvery, whatever the
	// token's expiry. For comparison only.
	BlindEvery time.Duration
}

// pod is one sidecar's token file: what it holds and what that cost.
type pod struct {
	is    *Issuer
	start time.Duration // since the simulation's start

	mu      sync.Mutex // guards the fields below
	held    exchange.Token
	since   time.Time // when the first token was stored
	expired time.Duration
	stores  int
	same    int
}

// Store records tok; pods are refresher Sinks whose token is always in
// place.
func (p *pod) Store(tok exchange.Token) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.stores++
	if p.stores == 1 {
		p.since = now
	} else if !p.held.Expiry.IsZero() && now.After(p.held.Expiry) {
		p.expired += now.Sub(p.held.Expiry)
	}
	changed := p.stores == 1 || !p.held.Value.Equal(tok.Value)
	if !changed {
		p.same++
	}
	p.held = tok
	return changed, nil
}

func (p *pod) Withdraw(string) (bool, error) { return true, nil }

// Run simulates f against issuers following models (pod i asks issuer
// i mod len(models); one front counts the requests of all) and returns what
// it measured. Call it inside a synctest bubble.
func Run(f Fleet, models ...Model) Report {
	fr := newFront()
	issuers := make([]*Issuer, len(models))
	for i, m := range models {
		issuers[i] = newIssuer(m, fr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rng := rand.New(rand.NewPCG(f.Seed, 0x70c3d))
	pods := make([]*pod, f.Pods)
	var wg sync.WaitGroup
	for i := range pods {
		p := &pod{is: issuers[i%len(issuers)], start: time.Duration(rng.Float64() * float64(f.StartSpread))}
		pods[i] = p
		restart := f.RestartAt + time.Duration(rng.Float64()*float64(f.RestartSpread))
		// Each pod's generator is seeded from the fleet's: PCG streams
		// seeded with consecutive numbers are correlated, and pods would
		// draw in step.
		podRand := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() { live(ctx, f, p, restart, podRand.Float64) })
	}
	time.Sleep(f.Duration)
	end := time.Now()
	cancel()
	wg.Wait()
	return report(f, models, issuers, fr, pods, end)
}

// live runs one pod from its start until ctx ends, restarting its
// refresher once at restart when the fleet says so.
func live(ctx context.Context, f Fleet, p *pod, restart time.Duration, rnd func() float64) {
	if !sleep(ctx, p.start) {
		return
	}
	if f.BlindEvery > 0 {
		blind(ctx, p, f.BlindEvery)
		return
	}
	run := func(ctx context.Context) {
		r := &refresher.Refresher{
			Exchanger:  p.is,
			Sink:       p,
			Logger:     slog.New(slog.DiscardHandler),
			Rand:       rnd,
			Interval:   f.Interval,
			MaxBackoff: f.MaxBackoff,
		}
		r.Run(ctx)
	}
	if f.RestartSpread <= 0 || restart <= p.start {
		run(ctx)
		return
	}
	first, stop := context.WithTimeout(ctx, restart-p.start)
	run(first)
	stop()
	if ctx.Err() == nil {
		run(ctx)
	}
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// blind is the seed's client: exchange every period, whatever the expiry.
func blind(ctx context.Context, p *pod, period time.Duration) {
	for {
		if tok, err := p.is.Exchange(ctx); err == nil {
			p.Store(tok)
		}
		if !sleep(ctx, period) {
			return
		}
	}
}
