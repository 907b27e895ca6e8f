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

		// With Run gone, a request ends at once with ErrNotRunning.
		if _, err := r.OnDemand.Refresh(context.Background()); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("Refresh after Run ended: %v, want ErrNotRunning", err)
		}
	})
}

// TestOnDemandPendingWhenRunEnds: a request that Run took but had not yet
// answered (it waited for the floor) ends with ErrNotRunning when Run
// ends, instead of holding its caller (the refresh socket's shutdown) until
// the caller's own deadline.
func TestOnDemandPendingWhenRunEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []func(int) (exchange.Token, error){opaque}, start: time.Now()}
		r := newRefresher(s, &memStore{})
		r.Interval = time.Hour
		r.OnDemand = NewOnDemand()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait() // first exchange done, waiting an hour

		errc := make(chan error, 1)
		go func() {
			_, err := r.OnDemand.Refresh(context.Background())
			errc <- err
		}()
		synctest.Wait() // taken by Run, which waits for the 500 ms floor
		cancel()
		<-done
		if err := <-errc; !errors.Is(err, ErrNotRunning) {
			t.Fatalf("pending Refresh when Run ended: %v, want ErrNotRunning", err)
		}
		if got := s.offsets(); len(got) != 1 {
			t.Fatalf("exchanges at %v, want only the first", got)
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
