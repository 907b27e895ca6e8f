// Package refresher keeps a token fresh: it exchanges, stores the result,
// and decides when to exchange again.
//
// Scheduling rules:
//
//  1. After a success, the next exchange is due after the refresh interval
//     less up to 10% random jitter, or, when the token's expiry is known, a
//     margin before that expiry, whichever is sooner. The margin is drawn
//     per token, uniformly from a band wide enough that pods holding one
//     shared token never herd, whatever the issuer's reuse window. With the
//     reuse window w known (rule 2) the band is [w/6, w], so the fleet
//     spreads its one useful request per token over the window. For the
//     pod's own tokens (rule 2) it is [1/6, 1/4] of their full life, about
//     the kubelet's 80% rule for projected tokens. Else it is [h/6, h], h
//     being the larger of half the full life (the longest life a token
//     arrived with) and the period: how much later than the last token's
//     the held one expires, which is the issuer's life less its reuse
//     window, the same for every pod that shares its tokens, unlike the
//     life a shared token arrives with. A first token's band is [1/12,
//     1/2] of its life. The margin is measured back from the expiry, not
//     forward from now, so pods that hold one shared token keep their
//     random spread instead of converging (a fraction of the remaining
//     life shrinks the gap between two pods at every refresh). While the
//     refresh-ahead point is more than an interval away, interval steps are
//     placed back from it, so a 15-minute token costs three exchanges at a
//     5-minute interval. When the band is an interval wide or more, the
//     steps land in it by themselves: the first that does is the
//     refresh-ahead point, and each pod keeps its own phase, made random by
//     one step of random length as it enters. A token that expires when
//     its credential does (Token.CredentialExpiry, within 1 s: a bearer
//     issuer's tokens do not outlive the capability) is not refreshed
//     ahead, since no exchange before that end gets a longer one: the next
//     exchange is due after the interval or at that end, whichever is
//     sooner, and the one at the end brings the refusal of rule 8. The
//     first wait after the first token is shortened by up to half, at
//     random, so that pods started together do not stay in step.
//  2. An issuer that answers with the token already held is reusing a
//     cached token (the deployed control plane does until fewer than 30 s
//     remain). The least remaining life at which that was seen at a
//     refresh-ahead point is the reuse window w: new tokens exist only
//     inside it. A new token obtained outside w means the issuer changed
//     its rule, and w is forgotten. A new token minted for the pod's
//     request arrives with the full life the issuer gives and expires as
//     much later than the last one as that one was held (both within 2 s);
//     after two such tokens in a row the tokens are the pod's own, until
//     one is not, or the issuer reuses one.
//  3. After a failure, the next attempt follows exponential backoff with
//     jitter, from about 1 s up to MaxBackoff. While a token with a known
//     expiry is held, three things change. Retries are never closer than a
//     gap drawn each time from the second half of the band's width (no
//     more than MaxBackoff), so that pods sharing an expiry do not converge
//     on it; while the token is valid, they are never later than half the
//     time it has left either, unless that is shorter than the gap.
//     Retry-After (capped at 5 minutes) is honoured, but while the token is
//     valid it is cut to a random 1/4 to 3/4 of the time the token has
//     left, so that the issuer's word does not push a pod past its expiry
//     while there is time for another attempt. A 429 says the issuer is up
//     but busy: the retry follows the backoff, or Retry-After cut as
//     above, no sooner than 2 to 6 s at random instead of the gap; once the
//     token has expired, the backoff restarts at the expiry and Retry-After
//     is not waited for, so that the issuer's spare capacity goes to the
//     pods that hold nothing valid. Without a token, or with one whose
//     expiry is unknown, the backoff applies, or Retry-After when it asks
//     for more. A token that was exchanged but could not be stored is
//     stored again on this schedule, without a new exchange, until it
//     expires.
//  4. No path waits less than the floor between two exchanges: 500 ms, or
//     the refresh interval when the operator set a shorter one.
//  5. Delays are measured on the monotonic clock, so a wall-clock step does
//     not stall or rush them. A token's expiry is wall time, so while one is
//     known the wait also ends when the wall clock reaches the time the
//     exchange is due: the monotonic clock stands still while a node is
//     suspended, the wall clock does not. WallAlarm ends it as soon as the
//     node resumes, without waking while it waits; without one, the wait
//     checks the wall clock once a minute.
//  6. A request through OnDemand ends any wait: the next exchange starts at
//     once, or when the floor since the last one began has passed, and
//     answers every request that arrived before it started.
//  7. A token handed over with Adopt (the one `tokend init` wrote) is
//     stored by Run's first attempt instead of an exchange, and scheduled
//     from as if it had just arrived.
//  8. A definitive refusal (exchange.Classify says Refused: the session
//     was stopped or revoked, the credential expired) withdraws the
//     token within that one exchange: the Sink replaces it by a record
//     that there is none (Withdraw), and every Observer is told
//     (Withdrawn), before the refresher waits. The refresher forgets the
//     token, so nothing restores it, and keeps asking on the backoff of
//     rule 3, capped at MaxBackoff: a session started again, or a refusal
//     that was a mistake, recovers with the next success, which stores
//     the new token as usual. One log line marks each change of state,
//     not each refusal.
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
	// tokend's is internal/wallalarm's. When nil or failing, the wait
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
	lastChanged bool            // whether the last attempt changed the token
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
		for _, req := range r.requests {
			req <- Result{Changed: err == nil && r.lastChanged, Fingerprint: fingerprint(tok), Err: err}
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
				return exchange.Token{}, fmt.Errorf("no token before the deadline: %w (the attempt before: %w)", err, prev)
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
// failures and telling every Observer; a refusal then withdraws the
// token (rule 8).
func (r *Refresher) attempt(ctx context.Context) (exchange.Token, error) {
	tok, err := r.try(ctx)
	if err == nil {
		return tok, nil
	}
	r.failures++
	r.tell(func(o Observer) { o.Failed(err, r.failures) })
	if exchange.Classify(err) == exchange.Refused {
		r.withdraw(err)
	}
	return tok, err
}

// try stores the token whose store failed last time, while it is
// unexpired, or else runs one exchange and stores its token.
func (r *Refresher) try(ctx context.Context) (exchange.Token, error) {
	r.lastChanged = false
	if u := r.unstored; u != nil && (u.Expiry.IsZero() || r.now().Before(u.Expiry)) {
		return r.store(*u, 0)
	}
	r.unstored = nil
	var left time.Duration
	if !r.held.Expiry.IsZero() {
		left = r.held.Expiry.Sub(r.now())
	}
	start := time.Now()
	r.lastStart = start
	tok, err := r.Exchanger.Exchange(ctx)
	took := time.Since(start)
	r.tell(func(o Observer) { o.Exchanged(took, err) })
	if err != nil {
		return exchange.Token{}, err
	}
	r.warnShortLife(tok)
	r.warnAboutIssuer(tok)
	r.warnCredentialExpiry(tok)
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
	r.restored(tok)
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

func fingerprint(tok exchange.Token) string {
	if tok.Value.IsZero() {
		return ""
	}
	return tok.Value.Fingerprint()
}
