package fleetsim

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
)

// Fleet describes the pods of a simulation.
type Fleet struct {
	// Pods is how many sidecars run.
	Pods int
	// StartSpread spreads the pods' starts uniformly over this long.
	StartSpread time.Duration
	// Duration is how long the simulation runs after the first start; the
	// report's rates cover the time after StartSpread.
	Duration time.Duration
	// Seed makes a run repeatable.
	Seed uint64
	// Configure, when set, adjusts each pod's Refresher (Interval)
	// before it runs, as tokend's daemon does.
	Configure func(*refresher.Refresher)
	// BlindEvery, when positive, replaces the Refresher with the seed's
	// in-process client: one exchange every BlindEvery, whatever the
	// token's expiry. For comparison only.
	BlindEvery time.Duration
}

// Report is what one simulation measured.
type Report struct {
	Model string
	Pods  int
	// Requests counts every exchange the issuer received.
	Requests int
	// MeanRPS and PeakRPS are requests per second after the start spread,
	// in one-second buckets; PeakOverMean is their ratio.
	MeanRPS      float64
	PeakRPS      int
	PeakOverMean float64
	// PerPodPerLifetime is requests per pod per token lifetime; Steady
	// counts only the second half of the run, once pods have learned
	// their issuer.
	PerPodPerLifetime float64
	Steady            float64
	// SameShare is the share of successful exchanges that returned the
	// token the pod already held.
	SameShare float64
	// ExpiredPodSeconds is the time, summed over pods, during which the
	// token a pod held had expired; ExpiredShare is its share of all the
	// pod-time after each pod's first token.
	ExpiredPodSeconds float64
	ExpiredShare      float64
}

// String formats r as one row of a table.
func (r Report) String() string {
	return fmt.Sprintf("%-34s %6.1f %6d %6.2f %6.2f %6.2f %5.0f%% %9.0f %6.2f%%",
		r.Model, r.MeanRPS, r.PeakRPS, r.PeakOverMean, r.PerPodPerLifetime, r.Steady, 100*r.SameShare, r.ExpiredPodSeconds, 100*r.ExpiredShare)
}

// Header names the columns of Report.String.
const Header = "model                              mean/s peak/s  pk/mn  req/lt steady  same  expired-s  exp%"

// pod is one sidecar's token file: what it holds and what that cost.
type pod struct {
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

// Run simulates f against an issuer following m and returns what it
// measured. Call it inside a synctest bubble.
func Run(m Model, f Fleet) Report {
	is := NewIssuer(m)
	ctx, cancel := context.WithCancel(context.Background())
	rng := rand.New(rand.NewPCG(f.Seed, 0x70c3d))
	pods := make([]*pod, f.Pods)
	var wg sync.WaitGroup
	for i := range pods {
		p := &pod{}
		pods[i] = p
		start := time.Duration(rng.Float64() * float64(f.StartSpread))
		podRand := rand.New(rand.NewPCG(f.Seed, uint64(i)))
		wg.Go(func() {
			select {
			case <-time.After(start):
			case <-ctx.Done():
				return
			}
			if f.BlindEvery > 0 {
				blind(ctx, is, p, f.BlindEvery)
				return
			}
			r := &refresher.Refresher{
				Exchanger: is,
				Sink:      p,
				Logger:    slog.New(slog.DiscardHandler),
				Rand:      podRand.Float64,
			}
			if f.Configure != nil {
				f.Configure(r)
			}
			r.Run(ctx)
		})
	}
	time.Sleep(f.Duration)
	end := time.Now()
	cancel()
	wg.Wait()
	return report(m, f, is, pods, end)
}

// blind is the seed's client: exchange every period, whatever the expiry.
func blind(ctx context.Context, is *Issuer, p *pod, period time.Duration) {
	for {
		if tok, err := is.Exchange(ctx); err == nil {
			p.Store(tok)
		}
		select {
		case <-time.After(period):
		case <-ctx.Done():
			return
		}
	}
}

func report(m Model, f Fleet, is *Issuer, pods []*pod, end time.Time) Report {
	rep := Report{Model: m.Name, Pods: f.Pods, Requests: is.requests}
	from, to := int64(f.StartSpread/time.Second), int64(f.Duration/time.Second)
	rep.MeanRPS, rep.PeakRPS = is.rates(from, to)
	if rep.MeanRPS > 0 {
		rep.PeakOverMean = float64(rep.PeakRPS) / rep.MeanRPS
	}
	var podTime, expired time.Duration
	var stores, same int
	for _, p := range pods {
		p.mu.Lock()
		if p.stores > 0 {
			podTime += end.Sub(p.since)
			expired += p.expired
			if e := p.held.Expiry; !e.IsZero() && end.After(e) {
				expired += end.Sub(e)
			}
		}
		stores += p.stores
		same += p.same
		p.mu.Unlock()
	}
	rep.ExpiredPodSeconds = expired.Seconds()
	if podTime > 0 {
		rep.ExpiredShare = float64(expired) / float64(podTime)
	}
	if stores > 0 {
		rep.SameShare = float64(same) / float64(stores)
	}
	lifetimes := float64(f.Duration) / float64(m.Lifetime)
	rep.PerPodPerLifetime = float64(is.requests) / float64(f.Pods) / lifetimes
	half, _ := is.rates(to/2, to)
	rep.Steady = half * float64(m.Lifetime/time.Second) / float64(f.Pods)
	return rep
}
