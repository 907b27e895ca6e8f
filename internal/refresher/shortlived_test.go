package refresher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// twoMinute issues two-minute tokens, as the service-account exchange does,
// and fails when fail says so; a failure takes cost (a timeout uses the
// whole 5 s exchange deadline).
type twoMinute struct {
	mu           sync.Mutex
	start        time.Time
	issued       int
	sinceSuccess int // failed attempts since the last success
	fail         func(at time.Duration, issued, sinceSuccess int) error
	cost         time.Duration
}

func (x *twoMinute) Exchange(ctx context.Context) (exchange.Token, error) {
	x.mu.Lock()
	err := x.fail(time.Since(x.start), x.issued, x.sinceSuccess)
	if err == nil {
		x.issued++
		x.sinceSuccess = 0
		n := x.issued
		x.mu.Unlock()
		return exchange.Token{Value: secret.New(fmt.Sprint("tok-", n)), Expiry: time.Now().Add(2 * time.Minute), ExpirySource: "expires_at"}, nil
	}
	x.sinceSuccess++
	x.mu.Unlock()
	select {
	case <-time.After(x.cost):
		return exchange.Token{}, err
	case <-ctx.Done():
		return exchange.Token{}, ctx.Err()
	}
}

// TestShortLivedTokensAreReplacedWellBeforeExpiry runs the refresher as the
// service-account mode does, for 20 minutes of fake time, and measures how
// long each replaced token still had to live when its successor was stored.
// The bounds hold for any jitter: a healthy refresh comes after one minute;
// during an outage no retry is later than halfway to the held token's
// expiry, so an outage ending at f leaves at least (120 s - f - cost) / 2.
func TestShortLivedTokensAreReplacedWellBeforeExpiry(t *testing.T) {
	unavailable := &exchange.StatusError{StatusCode: 503}
	deadline := fmt.Errorf("exchange: POST: %w", context.DeadlineExceeded)
	limited := &exchange.StatusError{StatusCode: 429, RetryAfter: 10 * time.Second}
	// atRefresh fails the first k attempts of every refresh (not the first
	// fetch): the worst moment, when the token is as old as it gets.
	atRefresh := func(k int, err error) func(time.Duration, int, int) error {
		return func(_ time.Duration, issued, since int) error {
			if issued > 0 && since < k {
				return err
			}
			return nil
		}
	}
	// outage fails every attempt in [from, from+d).
	outage := func(from, d time.Duration, err error) func(time.Duration, int, int) error {
		return func(at time.Duration, _, _ int) error {
			if at >= from && at < from+d {
				return err
			}
			return nil
		}
	}
	tests := []struct {
		name      string
		fail      func(time.Duration, int, int) error
		cost      time.Duration
		minMargin time.Duration
	}{
		{name: "healthy", fail: atRefresh(0, nil), minMargin: time.Minute},
		{name: "three 5 s timeouts at every refresh", fail: atRefresh(3, deadline), cost: 5 * time.Second, minMargin: 30 * time.Second},
		{name: "four 503s after 5 s of inner retries at every refresh", fail: atRefresh(4, unavailable), cost: 5 * time.Second, minMargin: 15 * time.Second},
		{name: "429 Retry-After 10s twice at every refresh", fail: atRefresh(2, limited), minMargin: 40 * time.Second},
		{name: "40 s outage from the first refresh, fast failures", fail: outage(time.Minute, 40*time.Second, errors.New("connection refused")), minMargin: 10 * time.Second},
		{name: "30 s outage from the first refresh, 5 s timeouts", fail: outage(time.Minute, 30*time.Second, deadline), cost: 5 * time.Second, minMargin: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				x := &twoMinute{start: time.Now(), fail: tt.fail, cost: tt.cost}
				var held time.Time
				var margins []time.Duration
				r := newRefresher(&script{}, &memStore{})
				r.Exchanger = x
				r.MinMargin = ShortLivedMargin
				r.Rand = nil // real jitter: the bounds must hold whatever it draws
				r.Sink = storeOnly(func(tok exchange.Token) (bool, error) {
					if !held.IsZero() {
						margins = append(margins, held.Sub(time.Now()))
					}
					held = tok.Expiry
					return true, nil
				})
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- r.Run(ctx) }()
				time.Sleep(20 * time.Minute)
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				if len(margins) < 10 {
					t.Fatalf("only %d replacements in 20 minutes", len(margins))
				}
				worst := slicesMin(margins)
				if worst < tt.minMargin {
					t.Errorf("a token was replaced only %v before it expired, want at least %v (margins %v)", worst, tt.minMargin, margins)
				}
				if tt.name == "healthy" && len(margins) > 20 {
					t.Errorf("%d replacements in 20 minutes: refreshing more often than once a minute", len(margins))
				}
			})
		})
	}
}

func slicesMin(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}

func TestMinMarginNeverRefreshesBeforeHalfLife(t *testing.T) {
	r := &Refresher{MinMargin: ShortLivedMargin, Interval: time.Hour, Rand: func() float64 { return 0 }}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	for life, want := range map[time.Duration]time.Duration{
		15 * time.Minute: 12 * time.Minute, // 80% rule: three minutes to spare already
		5 * time.Minute:  4 * time.Minute,
		3 * time.Minute:  2 * time.Minute, // one minute of margin
		2 * time.Minute:  time.Minute,
		90 * time.Second: 45 * time.Second, // half-life floor
		30 * time.Second: 15 * time.Second,
	} {
		got, _ := r.nextRefresh(exchange.Token{Expiry: now.Add(life)})
		if got != want {
			t.Errorf("%v token: refresh after %v, want %v", life, got, want)
		}
	}
}
