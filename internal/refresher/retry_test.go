package refresher

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// TestOutageRetriesKeepApartNearExpiry: while the issuer is down, a pod
// holding a 2-minute token retries no closer than half the width of its
// refresh band (here 15 s, half of --max-backoff, which is narrower), even
// as expiry nears, so that pods sharing one expiry do not converge on it
// (issue 20: every pod reached two requests a second in the last second);
// once the token has expired, retries follow the backoff up to MaxBackoff,
// or Retry-After when the issuer asks for more.
func TestOutageRetriesKeepApartNearExpiry(t *testing.T) {
	const life = 2 * time.Minute
	tests := []struct {
		name       string
		err        error
		afterLeast time.Duration // least gap once the token expired
	}{
		{name: "503", err: &exchange.StatusError{StatusCode: 503}, afterLeast: 15 * time.Second},
		{name: "refused", err: errors.New("dial tcp: connection refused"), afterLeast: 15 * time.Second},
		{name: "503, Retry-After 30s", err: &exchange.StatusError{StatusCode: 503, RetryAfter: 30 * time.Second}, afterLeast: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: []func(int) (exchange.Token, error){lasting(life), fail(tt.err)}}
			r := newRefresher(s, &memStore{})
			r.Rand = rand.New(rand.NewPCG(3, 4)).Float64
			got := runFor(t, r, s, 5*time.Minute)
			if len(got) < 6 {
				t.Fatalf("attempts at %v, want more", got)
			}
			for i := 2; i < len(got); i++ {
				gap := got[i] - got[i-1]
				least := 15 * time.Second
				if got[i-1] >= life {
					least = tt.afterLeast
				}
				if gap < least || gap > max(DefaultMaxBackoff, tt.afterLeast) {
					t.Errorf("attempts at %v and %v: %v apart, want within [%v, %v]", got[i-1], got[i], gap, least, max(DefaultMaxBackoff, tt.afterLeast))
				}
			}
		})
	}
}

// TestTooManyRequestsKeepsAReserve: a 429 with Retry-After 30 s is honoured
// while the token has time to spare, but never pushes a pod past its
// token's expiry: close to expiry the retry comes at a random fraction of
// the time left (never sooner than busyGap), and once the token has expired, on
// the pod's own backoff from the expiry on (issue 20: honoured as asked,
// Retry-After 30 s held pods expired for up to 22 s while the issuer had
// capacity to spare).
func TestTooManyRequestsKeepsAReserve(t *testing.T) {
	limited := &exchange.StatusError{StatusCode: 429, RetryAfter: 30 * time.Second}
	t.Run("near expiry", func(t *testing.T) {
		s := &script{steps: []func(int) (exchange.Token, error){lasting(2 * time.Minute), fail(limited)}}
		r := newRefresher(s, &memStore{}) // Rand 0: the margin is 10 s
		got := runFor(t, r, s, 3*time.Minute)
		if len(got) < 4 || got[1] != 110*time.Second {
			t.Fatalf("attempts at %v, want the second at 1m50s", got)
		}
		if got[2] >= 2*time.Minute {
			t.Errorf("attempts at %v: Retry-After 30s pushed the retry past the token's expiry at 2m", got)
		}
		// Before expiry, and right after it (the backoff restarts there):
		// busyGap to 3x it; later, the backoff, up to MaxBackoff.
		first := true
		for i := 2; i < len(got); i++ {
			gap, hi := got[i]-got[i-1], 3*busyGap
			if got[i-1] >= 2*time.Minute {
				if !first {
					hi = DefaultMaxBackoff
				}
				first = false
			}
			if gap < busyGap || gap > hi {
				t.Errorf("attempts at %v and %v: %v apart, want within [%v, %v] (attempts at %v)", got[i-1], got[i], gap, busyGap, hi, got)
			}
		}
	})
	t.Run("time to spare", func(t *testing.T) {
		s := &script{steps: []func(int) (exchange.Token, error){lasting(time.Hour), fail(limited)}}
		r := newRefresher(s, &memStore{})
		got := runFor(t, r, s, 6*time.Minute)
		if len(got) < 3 || got[2]-got[1] != 30*time.Second {
			t.Errorf("attempts at %v, want the third 30 s after the second, as Retry-After asks", got)
		}
	})
}
