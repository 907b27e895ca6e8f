// Package refresher keeps a token fresh: it exchanges, stores the result,
// and decides when to exchange again.
//
// Scheduling rules, one line each as the code cites them; the list "When
// tokend refreshes" in docs/how-it-works.md states them in full:
//
//  1. After a success: a random margin before the expiry, or the interval.
//  2. Reused tokens teach the reuse window; minted ones mark the pod's own.
//  3. After a failure: backoff with jitter to MaxBackoff, spread near expiry.
//  4. No path waits less than the floor: 500 ms, or a shorter interval.
//  5. Waits run on the monotonic clock, and end at the wall time due.
//  6. OnDemand ends any wait (floor kept); one exchange answers all asked.
//  7. A token handed over with Adopt is stored by Run's first attempt.
//  8. A definitive refusal withdraws the token within that one exchange.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// Defaults for the zero values of Refresher's fields.
const (
	DefaultInterval   = 5 * time.Minute
	DefaultMaxBackoff = 30 * time.Second
	initialBackoff    = time.Second
	maxRetryAfter     = 5 * time.Minute
	intervalJitter    = 0.1
	wallCheck         = time.Minute // without a WallAlarm (rule 5)
)

// ErrStore is wrapped by the error of an attempt whose exchange succeeded
// but whose token could not be stored; the token is kept and stored again
// before any new exchange (rule 3).
var ErrStore = errors.New("storing the token")

// Refresher runs exchanges and stores their tokens. Set the fields before
// calling Run or Once; a Refresher is not for use by more than one goroutine,
// except through OnDemand.
type Refresher struct {
	// Exchanger obtains tokens. Required.
	Exchanger exchange.Exchanger
	// Sink stores tokens. Required.
	Sink Sink
	// Interval is the refresh cadence; DefaultInterval when zero.
	Interval time.Duration
	// MaxBackoff caps the delay between failed attempts; DefaultMaxBackoff
	// when zero.
	MaxBackoff time.Duration
	// Logger receives one line per event; slog.Default() when nil.
	Logger *slog.Logger
	// Observers are told of every exchange, store and wait, in order.
	Observers []Observer
	// Now is the wall clock used for expiry; time.Now when nil.
	Now func() time.Time
	// Rand returns a number in [0, 1) for jitter; math/rand when nil.
	Rand func() float64
	// OnDemand, when set, carries requests for an exchange now (rule 6).
	OnDemand *OnDemand
	// WallAlarm, when set, arms an alarm for the wall-clock time at (rule
	// 5): c receives when the wall clock reaches at, and may receive
	// earlier (the clock was set, the node resumed); stop releases it.
	// tokend's is wallalarm.New. When nil or failing, the wait
	// checks the wall clock once a minute instead.
	WallAlarm func(at time.Time) (c <-chan struct{}, stop func(), err error)

	failures    int
	held        exchange.Token  // the token stored last
	unstored    *exchange.Token // exchanged (or adopted), but not stored yet
	window      time.Duration   // learned reuse window (rule 2); 0 unknown
	sched       schedState      // what else rules 1 to 3 learned, and where they stand
	aimed       bool            // the next exchange is at the refresh-ahead point
	aimAt       time.Time       // the refresh-ahead point of the held token
	aimFor      time.Time       // the expiry aimAt was drawn for
	firstWait   bool            // the next wait follows the first token stored
	lastStart   time.Time       // when the last exchange started (monotonic)
	lastChanged bool            // whether the last successful store changed the token
	requests    []chan<- Result // on-demand requests the next exchange answers
	warned      map[string]bool // what warnOnce has warned about
	withdrawn   string          // why the token is withdrawn (rule 8); "" while one is held
	entered     bool            // the last refusal began the withdrawal (not yet logged)
	withdrawErr error           // the last Sink.Withdraw's failure
}

// Run keeps the token fresh until ctx ends, then returns nil. It never
// returns because exchanges or stores fail: it logs and retries.
func (r *Refresher) Run(ctx context.Context) error {
	if r.OnDemand != nil {
		defer r.OnDemand.end()
	}
	b := r.newBackoff()
	for {
		tok, err := r.attempt(ctx)
		res := Result{Changed: err == nil && r.lastChanged, Err: err}
		if !tok.Value.IsZero() {
			res.Fingerprint = tok.Value.Fingerprint()
		}
		for _, req := range r.requests {
			req <- res
		}
		r.requests = r.requests[:0]
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		var wallDue time.Time
		if err == nil {
			b.Reset()
			delay, wallDue = r.nextRefresh(tok)
		} else {
			delay = r.retryDelay(b, err)
			r.logFailure(err, delay)
		}
		if !r.wait(ctx, delay, wallDue) {
			return nil
		}
	}
}

// Adopt hands Run a token obtained before it started, such as the one
// `tokend init` wrote (rule 7): Run's first attempt stores it through the
// Sink, which writes nothing when the files hold it already, instead of
// exchanging, and the next exchange is planned from tok as from a token
// just obtained. A tok that expires before that attempt is dropped and
// exchanged for. Call Adopt before Run, at most once.
func (r *Refresher) Adopt(tok exchange.Token) { r.unstored = &tok }

// Once obtains and stores one token, retrying retryable failures with
// backoff until ctx ends (set a deadline on it). It returns at once on a
// permanent failure, and gives up early when the next retry would fall after
// ctx's deadline. The error wraps the last failure, and the one before it
// when the deadline cut the last attempt short.
func (r *Refresher) Once(ctx context.Context) (exchange.Token, error) {
	b := r.newBackoff()
	var prev error
	for {
		tok, err := r.attempt(ctx)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			if prev != nil {
				// The deadline cut an attempt short; the failure before
				// it says why there is no token.
				err = fmt.Errorf("%w (the attempt before: %w)", err, prev)
			}
			return exchange.Token{}, fmt.Errorf("no token before the deadline: %w", err)
		}
		prev = err
		if !exchange.Retryable(err) {
			return exchange.Token{}, err
		}
		delay := r.retryDelay(b, err)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return exchange.Token{}, fmt.Errorf("no token before the deadline (next retry would be in %s): %w", delay.Round(time.Millisecond), err)
		}
		r.logFailure(err, delay)
		if !r.wait(ctx, delay, time.Time{}) {
			return exchange.Token{}, fmt.Errorf("no token before the deadline: %w", err)
		}
	}
}

// attempt is try, counting a failure in the one count of consecutive
// failures and telling every Observer. A refusal then withdraws the token
// (rule 8): through the Sink, to the Observers, and from what the
// refresher holds and learned.
func (r *Refresher) attempt(ctx context.Context) (exchange.Token, error) {
	tok, err := r.try(ctx)
	if err == nil {
		return tok, nil
	}
	r.failures++
	r.tell(func(o Observer) { o.Failed(err, r.failures) })
	if exchange.Classify(err) != exchange.Refused {
		return tok, err
	}
	reason := exchange.Reason(err)
	// A failed Withdraw is not logged as its own line: the refusal's line
	// carries it, and the next refusal writes it again.
	if _, r.withdrawErr = r.Sink.Withdraw(reason); r.withdrawErr != nil {
		r.tell(func(o Observer) { o.StoreFailed(r.withdrawErr) })
	}
	r.tell(func(o Observer) { o.Withdrawn(reason) })
	r.held, r.unstored = exchange.Token{}, nil
	r.window, r.sched, r.aimed = 0, schedState{}, false
	r.entered = r.withdrawn == ""
	r.withdrawn = reason
	return tok, err
}

// try stores the token whose store failed last time, while it is
// unexpired, or else runs one exchange and stores its token.
func (r *Refresher) try(ctx context.Context) (exchange.Token, error) {
	if u := r.unstored; u != nil && (u.Expiry.IsZero() || r.now().Before(u.Expiry)) {
		return r.store(*u, 0)
	}
	r.unstored = nil
	var left time.Duration
	if !r.held.Expiry.IsZero() {
		left = r.held.Expiry.Sub(r.now())
	}
	r.lastStart = time.Now()
	tok, err := r.Exchanger.Exchange(ctx)
	took := time.Since(r.lastStart)
	r.tell(func(o Observer) { o.Exchanged(took, err) })
	if err != nil {
		return exchange.Token{}, err
	}
	r.warn(tok)
	return r.store(tok, left)
}

// store stores tok, obtained when the held token had left to live, and
// learns from it (rule 2).
func (r *Refresher) store(tok exchange.Token, left time.Duration) (exchange.Token, error) {
	changed, err := r.Sink.Store(tok)
	if err != nil {
		r.unstored = &tok
		r.tell(func(o Observer) { o.StoreFailed(err) })
		return exchange.Token{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	r.unstored = nil
	same := !r.held.Value.IsZero() && r.held.Value.Equal(tok.Value)
	r.learn(tok, left, same)
	if r.held.Value.IsZero() {
		r.firstWait = true
	}
	r.tell(func(o Observer) { o.Stored(tok, changed) })
	r.logSuccess(tok, changed)
	if r.withdrawn != "" { // rule 8's withdrawal ends
		r.logger().Info("token restored: the control plane issued a token again after refusing",
			slog.String("fingerprint", tok.Value.Fingerprint()), slog.String("refused_for", r.withdrawn))
		r.withdrawn, r.entered = "", false
	}
	r.held = tok
	r.lastChanged = changed
	r.failures = 0
	return tok, nil
}

func (r *Refresher) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

func (r *Refresher) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Refresher) rand() float64 {
	if r.Rand == nil {
		return rand.Float64()
	}
	return r.Rand()
}
