package refresher

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// TestFloorHoldsOnTheExpiryPath: an issuer whose tokens expire 20 ms after
// they are issued gets at most one exchange per floor, not one per 20 ms,
// and the operator is warned about it once, not at every exchange.
func TestFloorHoldsOnTheExpiryPath(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){lasting(20 * time.Millisecond)}}
	r := newRefresher(s, &memStore{})
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	got := runFor(t, r, s, 10*time.Second)
	for i := 1; i < len(got); i++ {
		if gap := got[i] - got[i-1]; gap < minDelay {
			t.Fatalf("exchanges %v and %v only %v apart, want at least the %v floor", got[i-1], got[i], gap, minDelay)
		}
	}
	if len(got) < 15 {
		t.Errorf("%d exchanges in 10 s, want one per floor (about 20)", len(got))
	}
	if n := strings.Count(buf.String(), "live only seconds"); n != 1 {
		t.Errorf("short-lived tokens warned about %d times, want once:\n%s", n, buf.String())
	}
}

// TestExplicitIntervalBelowTheFloorIsHonoured: an operator who sets a
// refresh interval shorter than 500 ms gets it ("any positive Go duration").
func TestExplicitIntervalBelowTheFloorIsHonoured(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	r := newRefresher(s, &memStore{})
	r.Interval = 200 * time.Millisecond
	got := runFor(t, r, s, time.Second+time.Millisecond)
	assertOffsets(t, got, []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond, 600 * time.Millisecond, 800 * time.Millisecond, time.Second}, 0)
}

// TestFloorHoldsAfterFailures: retries never come faster than the floor,
// even while the held token is about to expire.
func TestFloorHoldsAfterFailures(t *testing.T) {
	unavailable := &exchange.StatusError{StatusCode: 503}
	s := &script{steps: []func(int) (exchange.Token, error){lasting(2 * time.Second), fail(unavailable)}}
	r := newRefresher(s, &memStore{})
	got := runFor(t, r, s, 10*time.Second)
	for i := 1; i < len(got); i++ {
		if gap := got[i] - got[i-1]; gap < minDelay {
			t.Fatalf("attempts %v and %v only %v apart, want at least the %v floor", got[i-1], got[i], gap, minDelay)
		}
	}
}

// TestSharedTokenIsAimedIntoTheReuseWindow: against an issuer that reuses
// its token until 30 s remain, a refresher learns the window and, after
// the first token's life, obtains each new token with one request inside
// it: no more than the interval steps and that one request per lifetime.
func TestSharedTokenIsAimedIntoTheReuseWindow(t *testing.T) {
	const life, reuse = 15 * time.Minute, 30 * time.Second
	var current exchange.Token
	n := 0
	s := &script{steps: []func(int) (exchange.Token, error){func(int) (exchange.Token, error) {
		if n == 0 || time.Until(current.Expiry) < reuse {
			n++
			tok, _ := lasting(life)(n)
			current = tok
		}
		return current, nil
	}}}
	m := &memStore{}
	r := newRefresher(s, m)
	r.Rand = rand.New(rand.NewPCG(1, 2)).Float64
	r.Interval = 5 * time.Minute
	got := runFor(t, r, s, 2*time.Hour)
	if len(m.tokens) < 8 {
		t.Fatalf("%d tokens in two hours of 15-minute tokens, want at least 8", len(m.tokens))
	}
	// The second hour: four lifetimes, three exchanges each.
	late := 0
	for _, at := range got {
		if at >= time.Hour {
			late++
		}
	}
	// The 80%-of-remaining schedule made four per token (sixteen).
	if late > 13 {
		t.Errorf("%d exchanges in the second hour, want at most 13 (three per 15-minute token)", late)
	}
}
