package refresher

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// cappedAt is a bearer issuer whose tokens live life but never past the
// capability's end, and which refuses the capability from its end on.
func cappedAt(end time.Time, life time.Duration) func(int) (exchange.Token, error) {
	return func(n int) (exchange.Token, error) {
		now := time.Now()
		if !now.Before(end) {
			return exchange.Token{}, fmt.Errorf("%w: at its end", exchange.ErrCredentialExpired)
		}
		exp := now.Add(life)
		if exp.After(end) {
			exp = end
		}
		return exchange.Token{Value: secret.New(fmt.Sprintf("tok-%d", n)), Expiry: exp, ExpirySource: "expires_at", CredentialExpiry: end}, nil
	}
}

// TestCappedTokensAreNotRefreshedAhead: tokens the capability's end cuts
// short cannot be outlived by refreshing ahead, so the refresher keeps
// the interval's cadence up to that end instead of asking again and again
// for ever shorter tokens; the one exchange at the end brings the refusal
// and withdraws the token.
func TestCappedTokensAreNotRefreshedAhead(t *testing.T) {
	for _, c := range []struct {
		name           string
		life, interval time.Duration
	}{
		{"5m tokens, 5m interval", 5 * time.Minute, 0},
		{"15m tokens, 5m interval", 15 * time.Minute, 0},
		{"15m tokens, 1m interval", 15 * time.Minute, time.Minute},
		{"1h tokens, 5m interval", time.Hour, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			const capability = 2 * time.Hour
			s := &script{}
			m := &memStore{}
			r := newRefresher(s, m)
			r.Interval = c.interval
			rng := rand.New(rand.NewPCG(1, 2))
			r.Rand = rng.Float64
			// The bubble's clock starts at a fixed time: the capability's
			// end is known before Run starts.
			end := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(capability)
			s.steps = []func(int) (exchange.Token, error){cappedAt(end, c.life)}
			// Run until half a second past the end: the refusal's retries
			// (rule 8) come later.
			got := runFor(t, r, s, capability+time.Second/2)

			var last5, after int
			for _, off := range got {
				switch {
				case off >= capability:
					after++
				case off >= capability-5*time.Minute:
					last5++
				}
			}
			interval := c.interval
			if interval == 0 {
				interval = DefaultInterval
			}
			// Interval steps, and one more when a step lands just before
			// the end.
			if want := int(5*time.Minute/interval) + 1; last5 > want {
				t.Errorf("%d exchanges in the capability's last 5 minutes, want at most %d (the interval's cadence): %v", last5, want, got)
			}
			t.Logf("%d exchanges in the capability's last 5 minutes", last5)
			if after != 1 {
				t.Errorf("%d exchanges in the half second from the capability's end, want one: %v", after, got)
			}
			if len(m.withdrawn) != 1 {
				t.Errorf("%d withdrawals, want one at the capability's end", len(m.withdrawn))
			}
		})
	}
}
