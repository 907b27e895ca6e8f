package refresher

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// TestOnDemandExchangesNowHeldToTheFloor: a request during a long wait
// starts an exchange at once when the floor has passed, and no sooner than
// the floor after the last exchange began; requests that arrive together
// share one exchange, and each learns whether the token changed.
func TestOnDemandExchangesNowHeldToTheFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []func(int) (exchange.Token, error){opaque}, start: time.Now()}
		m := &memStore{}
		r := newRefresher(s, m)
		r.Interval = time.Hour
		r.OnDemand = NewOnDemand()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait() // first exchange done, waiting an hour

		// Three requests at once, 100 ms after the first exchange began:
		// one exchange, at the 500 ms floor.
		time.Sleep(100 * time.Millisecond)
		results := make(chan Result, 3)
		for range 3 {
			go func() {
				res, err := r.OnDemand.Refresh(ctx)
				if err != nil {
					t.Errorf("Refresh: %v", err)
				}
				results <- res
			}()
		}
		for range 3 {
			res := <-results
			if !res.Changed || res.Err != nil || res.Fingerprint == "" {
				t.Errorf("result %+v, want a changed token", res)
			}
		}
		if got, want := s.offsets(), []time.Duration{0, 500 * time.Millisecond}; !equalDurations(got, want) {
			t.Fatalf("exchanges at %v, want %v", got, want)
		}

		// A request long after the floor is served at once.
		time.Sleep(10 * time.Minute)
		if _, err := r.OnDemand.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if got := s.offsets(); len(got) != 3 || got[2] != 500*time.Millisecond+10*time.Minute {
			t.Fatalf("exchanges at %v, want a third at 10m0.5s", got)
		}
		cancel()
		<-done

		// With Run gone, a request ends with its context.
		short, stop := context.WithTimeout(t.Context(), time.Second)
		defer stop()
		if _, err := r.OnDemand.Refresh(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Refresh after Run ended: %v, want the context's deadline", err)
		}
	})
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
