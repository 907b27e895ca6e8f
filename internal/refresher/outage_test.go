package refresher

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// outage is an Exchanger for an issuer that fails every call with err
// from from until to (offsets on the bubble's clock from start), and
// issues tokens otherwise.
type outage struct {
	script
	from, to time.Duration
	err      error
}

func newOutage(from, to time.Duration, err error) *outage {
	o := &outage{from: from, to: to, err: err}
	o.steps = []func(int) (exchange.Token, error){func(n int) (exchange.Token, error) {
		if at := time.Since(o.start); at >= o.from && at < o.to {
			return exchange.Token{}, o.err
		}
		return opaque(n)
	}}
	return o
}

// TestRunOutageSpacingAndRecovery: during an outage the attempts are spaced
// by the backoff (at least 80% of each step, the jitter's floor, and once
// capped, of MaxBackoff), and after it the first attempt succeeds, at most
// one capped step after the issuer came back: the figures the system
// tests leave to this one.
func TestRunOutageSpacingAndRecovery(t *testing.T) {
	const maxBackoff = 150 * time.Millisecond
	tests := []struct {
		name  string
		err   error
		least time.Duration // the least gap between failed attempts
	}{
		{name: "503", err: &exchange.StatusError{StatusCode: 503}, least: maxBackoff * 8 / 10},
		{name: "429 Retry-After 1s", err: &exchange.StatusError{StatusCode: 429, RetryAfter: time.Second}, least: time.Second},
		{name: "403, permanent", err: &exchange.StatusError{StatusCode: 403}, least: maxBackoff * 8 / 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := newOutage(500*time.Millisecond, 5*time.Second, tt.err)
				r := newRefresher(&o.script, &memStore{})
				r.Exchanger = o
				r.Interval = 100 * time.Millisecond // the 500 ms floor
				r.MaxBackoff = maxBackoff
				r.Rand = nil // real jitter: the bounds must hold for any
				o.start = time.Now()
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- r.Run(ctx) }()
				time.Sleep(8 * time.Second)
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				calls := o.offsets()
				var failed []time.Duration
				recovery := time.Duration(-1)
				for _, at := range calls {
					switch {
					case at >= o.from && at < o.to:
						failed = append(failed, at)
					case at >= o.to && recovery < 0:
						recovery = at
					}
				}
				if len(failed) < 3 {
					t.Fatalf("calls at %v: fewer than 3 attempts during the outage", calls)
				}
				for i := 1; i < len(failed); i++ {
					if gap := failed[i] - failed[i-1]; gap < tt.least || gap > max(tt.least, maxBackoff) {
						t.Errorf("failed attempts %v apart, want within [%v, %v] (calls at %v)", gap, tt.least, max(tt.least, maxBackoff), calls)
					}
				}
				step := max(maxBackoff, tt.least)
				if recovery < 0 || recovery-o.to > step {
					t.Errorf("first success at %v, the outage ended at %v: want within one step (%v); calls at %v", recovery, o.to, step, calls)
				}
			})
		})
	}
}
