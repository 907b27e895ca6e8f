package refresher

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// TestAdoptStoresWithoutExchanging: an adopted token with 14 minutes left
// is stored at once, with no exchange, and an exchange follows within the
// interval; an adopted token that expired meanwhile is not stored, but
// exchanged for at once.
func TestAdoptStoresWithoutExchanging(t *testing.T) {
	for _, tc := range []struct {
		name      string
		left      time.Duration
		exchanges int // at once
		stored    string
	}{
		{"far from expiry", 14 * time.Minute, 0, "init-token"},
		{"expired", -time.Second, 1, "tok-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: []func(int) (exchange.Token, error){lasting(15 * time.Minute)}, start: time.Now()}
				m := &memStore{}
				r := newRefresher(s, m)
				r.Adopt(exchange.Token{Value: secret.New("init-token"), Expiry: time.Now().Add(tc.left)})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				go r.Run(ctx)
				synctest.Wait()
				if got := s.offsets(); len(got) != tc.exchanges {
					t.Fatalf("exchanges at %v at the start, want %d", got, tc.exchanges)
				}
				m.mu.Lock()
				stored := append([]string(nil), m.tokens...)
				m.mu.Unlock()
				if len(stored) != 1 || stored[0] != tc.stored {
					t.Fatalf("stored %v, want [%s]", stored, tc.stored)
				}
				time.Sleep(DefaultInterval)
				synctest.Wait()
				if got := s.offsets(); len(got) <= tc.exchanges {
					t.Fatalf("exchanges at %v, want one more within an interval", got)
				}
			})
		})
	}
}
