package refresher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// hangs is an Exchanger that fails once with first, then blocks every
// later call until its context ends: an issuer that answered badly, then
// stopped answering.
type hangs struct {
	first error
	calls int
}

func (h *hangs) Exchange(ctx context.Context) (exchange.Token, error) {
	h.calls++
	if h.calls == 1 {
		return exchange.Token{}, h.first
	}
	<-ctx.Done()
	return exchange.Token{}, ctx.Err()
}

// TestOnceDeadlineKeepsTheCause: when the deadline cuts an attempt short,
// the error still says why the attempts before it failed, instead of only
// "context deadline exceeded".
func TestOnceDeadlineKeepsTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &hangs{first: exchange.ErrExpired}
		r := newRefresher(nil, &memStore{})
		r.Exchanger = ex
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := r.Once(ctx)
		if ex.calls != 2 {
			t.Fatalf("%d calls, want 2", ex.calls)
		}
		if !errors.Is(err, exchange.ErrExpired) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no token before the deadline") {
			t.Fatalf("err = %v; want the deadline and the earlier failure", err)
		}
	})
}
