package refresher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// script is a fake Exchanger: each call takes the next step (the last one
// repeats) and records when it happened on the bubble's clock.
type script struct {
	mu    sync.Mutex
	steps []func(n int) (exchange.Token, error)
	calls []time.Time
	start time.Time
}

func (s *script) Exchange(ctx context.Context) (exchange.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, time.Now())
	i := min(len(s.calls)-1, len(s.steps)-1)
	return s.steps[i](len(s.calls))
}

// offsets returns the call times relative to start.
func (s *script) offsets() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, c := range s.calls {
		out = append(out, c.Sub(s.start))
	}
	return out
}

func opaque(n int) (exchange.Token, error) {
	return exchange.Token{Value: secret.New(fmt.Sprintf("tok-%d", n))}, nil
}

func lasting(d time.Duration) func(int) (exchange.Token, error) {
	return func(n int) (exchange.Token, error) {
		return exchange.Token{Value: secret.New(fmt.Sprintf("tok-%d", n)), Expiry: time.Now().Add(d), ExpirySource: "expires_at"}, nil
	}
}

func fail(err error) func(int) (exchange.Token, error) {
	return func(int) (exchange.Token, error) { return exchange.Token{}, err }
}

// memStore is a Sink in memory.
type memStore struct {
	mu        sync.Mutex
	tokens    []string
	fail      atomic.Int32 // fail this many stores
	calls     atomic.Int32 // stores attempted
	withdrawn []string     // the reasons of the withdrawals written
}

// Withdraw records reason; the next token stored is a change.
func (m *memStore) Withdraw(reason string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.withdrawn = append(m.withdrawn, reason)
	m.tokens = append(m.tokens, "")
	return true, nil
}

// storeOnly is a Sink made of a function.
type storeOnly func(exchange.Token) (bool, error)

func (f storeOnly) Store(tok exchange.Token) (bool, error) { return f(tok) }
func (storeOnly) Withdraw(string) (bool, error)            { return true, nil }

func (m *memStore) Store(tok exchange.Token) (bool, error) {
	m.calls.Add(1)
	if m.fail.Load() > 0 {
		m.fail.Add(-1)
		return false, errors.New("disk full")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := len(m.tokens) == 0 || m.tokens[len(m.tokens)-1] != tok.Value.Reveal()
	if changed {
		m.tokens = append(m.tokens, tok.Value.Reveal())
	}
	return changed, nil
}

// runFor runs r in a synctest bubble for d of fake time and returns the
// script's call offsets.
func runFor(t *testing.T, r *Refresher, s *script, d time.Duration) []time.Duration {
	t.Helper()
	var out []time.Duration
	synctest.Test(t, func(t *testing.T) {
		s.start = time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(d)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		out = s.offsets()
	})
	return out
}

func newRefresher(s *script, m *memStore) *Refresher {
	return &Refresher{
		Exchanger: s,
		Sink:      m,
		Logger:    slog.New(slog.DiscardHandler),
		Rand:      func() float64 { return 0 },
	}
}

func TestRunRefreshesOnInterval(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	m := &memStore{}
	r := newRefresher(s, m)
	r.Interval = 5 * time.Minute
	got := runFor(t, r, s, 16*time.Minute)
	want := []time.Duration{0, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute}
	assertOffsets(t, got, want, 0)
}

func TestRunIntervalJitterIsAtMostTenPercentEarly(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	r := newRefresher(s, &memStore{})
	r.Interval = 10 * time.Minute
	r.Rand = func() float64 { return 0.999 }
	got := runFor(t, r, s, 16*time.Minute)
	// 10m less 9.99%: 9m0.06s; the first wait after start is spread over
	// its second half as well (rule 1): 9m0.06s less 49.95%.
	first := 4*time.Minute + 30300030*time.Microsecond
	assertOffsets(t, got, []time.Duration{0, first, first + 9*time.Minute + 60*time.Millisecond}, time.Millisecond)
}

func TestRunRefreshesAheadOfExpiry(t *testing.T) {
	// A 100 s token is refreshed well before the 5 m interval, a margin
	// before expiry drawn from a band (rule 1; Rand 0: its low end): for
	// the first token [1/12, 1/2] of its life, 8.3 s; for the second
	// [h/6, h], h being the period since the first (91.7 s), 15.3 s; once
	// two tokens in a row were minted for the pod's request, as an
	// issuer's that mints per request are, [1/6, 1/4] of it, 16.7 s.
	s := &script{steps: []func(int) (exchange.Token, error){lasting(100 * time.Second)}}
	r := newRefresher(s, &memStore{})
	got := runFor(t, r, s, 270*time.Second)
	first := 100 * time.Second * 11 / 12
	second := first + 100*time.Second - first/6
	assertOffsets(t, got, []time.Duration{0, first, second, second + 100*time.Second*5/6}, time.Millisecond)
}

func TestRunBacksOffAndHonoursRetryAfter(t *testing.T) {
	unavailable := &exchange.StatusError{StatusCode: 503}
	limited := &exchange.StatusError{StatusCode: 429, RetryAfter: 20 * time.Second}
	s := &script{steps: []func(int) (exchange.Token, error){
		fail(unavailable), fail(unavailable), fail(unavailable), fail(limited), opaque,
	}}
	r := newRefresher(s, &memStore{})
	got := runFor(t, r, s, 40*time.Second)
	if len(got) != 5 {
		t.Fatalf("calls at %v, want 5", got)
	}
	gaps := []time.Duration{got[1] - got[0], got[2] - got[1], got[3] - got[2], got[4] - got[3]}
	nominal := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	for i, n := range nominal {
		lo, hi := time.Duration(float64(n)*0.8), time.Duration(float64(n)*1.2)
		if gaps[i] < lo || gaps[i] > hi {
			t.Errorf("backoff gap %d = %v, want within [%v, %v]", i, gaps[i], lo, hi)
		}
	}
	if gaps[3] != 20*time.Second {
		t.Errorf("gap after 429 Retry-After 20s = %v", gaps[3])
	}
}

func TestRunBackoffIsCapped(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){fail(errors.New("connection refused"))}}
	r := newRefresher(s, &memStore{})
	r.MaxBackoff = 30 * time.Second
	got := runFor(t, r, s, 10*time.Minute)
	for i := 1; i < len(got); i++ {
		if gap := got[i] - got[i-1]; gap > 30*time.Second {
			t.Fatalf("gap %v exceeds the 30s cap", gap)
		}
	}
	if len(got) < 20 {
		t.Errorf("only %d attempts in 10 minutes", len(got))
	}
}

func TestRunNeverGivesUpOnPermanentErrors(t *testing.T) {
	// A 403 is a refusal now (TestRefusalWithdrawsWithinOneExchange); a
	// 404 is the permanent failure that keeps the token.
	notFound := &exchange.StatusError{StatusCode: 404, Hint: "no token endpoint at this URL"}
	s := &script{steps: []func(int) (exchange.Token, error){fail(notFound), fail(notFound), fail(notFound), opaque}}
	m := &memStore{}
	r := newRefresher(s, m)
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	got := runFor(t, r, s, time.Minute)
	if len(got) != 4 || len(m.tokens) != 1 {
		t.Fatalf("calls %v, tokens %d; want 4 calls and a token in the end", got, len(m.tokens))
	}
	if !bytes.Contains(buf.Bytes(), []byte("level=ERROR")) || !bytes.Contains(buf.Bytes(), []byte("status=404")) {
		t.Errorf("permanent failure not logged at error level with its status:\n%s", buf.String())
	}
}

// TestRunRetriesFailedStoreWithTheTokenInHand: a store that fails after a
// good exchange is retried with the same token, without a new exchange, and
// logged as a store failure, not as a failed exchange.
func TestRunRetriesFailedStoreWithTheTokenInHand(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	m := &memStore{}
	m.fail.Store(2)
	r := newRefresher(s, m)
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	got := runFor(t, r, s, 10*time.Second)
	if len(got) != 1 || m.calls.Load() != 3 || len(m.tokens) != 1 || m.tokens[0] != "tok-1" {
		t.Fatalf("exchanges %v, stores %d, tokens %v; want one exchange, 2 failed stores, then its token stored", got, m.calls.Load(), m.tokens)
	}
	if logs := buf.String(); !strings.Contains(logs, "storing the token failed") || strings.Contains(logs, "exchange failed") {
		t.Errorf("store failures not logged as such:\n%s", logs)
	}
}

// TestRunExchangesAgainWhenTheUnstoredTokenExpires: a token that could not
// be stored before it expired is dropped for a new exchange.
func TestRunExchangesAgainWhenTheUnstoredTokenExpires(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){lasting(3 * time.Second)}}
	m := &memStore{}
	m.fail.Store(3) // stores at 0 s, ~1 s, ~3 s fail
	r := newRefresher(s, m)
	r.Rand = func() float64 { return 0.5 }
	got := runFor(t, r, s, 20*time.Second)
	if len(got) < 2 || len(m.tokens) == 0 || m.tokens[0] == "tok-1" {
		t.Fatalf("exchanges %v, tokens %v; want a second exchange once tok-1 expired unstored", got, m.tokens)
	}
}

func TestRunSurvivesWallClockJump(t *testing.T) {
	// The node sleeps: the wall clock jumps 9 minutes while the monotonic
	// clock does not. A 10-minute token must still be refreshed at once,
	// not 8 monotonic minutes after it was issued.
	s := &script{}
	var offset atomic.Int64
	wall := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s.steps = []func(int) (exchange.Token, error){func(n int) (exchange.Token, error) {
		return exchange.Token{Value: secret.New(fmt.Sprint(n)), Expiry: wall().Add(10 * time.Minute)}, nil
	}}
	r := newRefresher(s, &memStore{})
	r.Interval = time.Hour
	r.Now = wall
	synctest.Test(t, func(t *testing.T) {
		s.start = time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.Run(ctx)
		time.Sleep(30 * time.Second)
		offset.Store(int64(9 * time.Minute))
		time.Sleep(time.Minute)
		if got := s.offsets(); len(got) != 2 {
			t.Fatalf("calls at %v: no refresh within a minute of the wall-clock jump", got)
		}
		// A backward jump must not delay the monotonic schedule: the next
		// refresh is 1/12 of the 10-minute life before expiry (Rand 0),
		// 9m10s after the last, 10m10s from the start.
		offset.Store(-int64(time.Hour))
		time.Sleep(9 * time.Minute)
		if got := s.offsets(); len(got) != 3 {
			t.Fatalf("calls at %v: backward wall-clock jump delayed the refresh", got)
		}
		cancel()
		synctest.Wait()
	})
}

func TestOnce(t *testing.T) {
	unavailable := &exchange.StatusError{StatusCode: 503}
	tests := []struct {
		name    string
		steps   []func(int) (exchange.Token, error)
		timeout time.Duration
		calls   int
		wantErr string
	}{
		{name: "first try", steps: []func(int) (exchange.Token, error){opaque}, timeout: time.Minute, calls: 1},
		{name: "after retries", steps: []func(int) (exchange.Token, error){fail(unavailable), fail(unavailable), opaque}, timeout: time.Minute, calls: 3},
		{name: "permanent fails fast", steps: []func(int) (exchange.Token, error){fail(&exchange.StatusError{StatusCode: 401})}, timeout: time.Minute, calls: 1, wantErr: "401"},
		{name: "gives up at the deadline", steps: []func(int) (exchange.Token, error){fail(unavailable)}, timeout: 20 * time.Second, calls: 5, wantErr: "no token before the deadline"},
		{name: "retry-after beyond deadline", steps: []func(int) (exchange.Token, error){fail(&exchange.StatusError{StatusCode: 429, RetryAfter: time.Minute})}, timeout: 30 * time.Second, calls: 1, wantErr: "next retry would be in 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: tt.steps, start: time.Now()}
				m := &memStore{}
				r := newRefresher(s, m)
				ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
				defer cancel()
				_, err := r.Once(ctx)
				if tt.wantErr == "" && err != nil {
					t.Fatalf("Once: %v", err)
				}
				if tt.wantErr != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr))) {
					t.Fatalf("Once err = %v, want %q", err, tt.wantErr)
				}
				if got := len(s.offsets()); got < tt.calls || (tt.wantErr != "no token before the deadline" && got != tt.calls) {
					t.Errorf("%d calls, want %d", got, tt.calls)
				}
			})
		})
	}
}

func assertOffsets(t *testing.T, got, want []time.Duration, tolerance time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("calls at %v, want %v", got, want)
	}
	for i := range got {
		if d := got[i] - want[i]; d < -tolerance || d > tolerance {
			t.Fatalf("calls at %v, want %v (±%v)", got, want, tolerance)
		}
	}
}
