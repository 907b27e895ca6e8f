package refresher

import (
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// Schedule constants; the package doc explains the rules they serve.
const (
	// minDelay is the floor between two exchanges on every path.
	minDelay = 500 * time.Millisecond
	// shortLife is the remaining life under which a token is warned about.
	shortLife = 5 * time.Second
	// ownAfter is how many new tokens in a row, each minted for the
	// pod's request, mark tokens as the pod's own (rule 2).
	ownAfter = 2
	// ownSlack is how far the figures that tell a token minted for the
	// request may be off: the exchange's latency and the Date header's
	// rounding.
	ownSlack = 2 * time.Second
)

// schedState is what rules 1 to 3 learned of the issuer, and where the
// schedule stands, besides the reuse window and the refresh-ahead point.
type schedState struct {
	fullLife time.Duration // the longest life a token arrived with
	own      int           // new tokens in a row minted for the pod's request
	gotAt    time.Time     // when the held token arrived
	period   time.Duration // the held token's expiry less the one before; 0 unknown
	stepping bool          // the last wait was an interval step in a wide band
	resetFor time.Time     // the expiry at which a 429's backoff restarted
}

// floor is the least delay between two exchanges: minDelay, or the
// interval when the operator chose a shorter one.
func (r *Refresher) floor() time.Duration {
	if r.Interval > 0 && r.Interval < minDelay {
		return r.Interval
	}
	return minDelay
}

// learn applies rule 2 to a stored token, before nextRefresh plans: left is
// the held token's life when the exchange began (zero if unknown or no
// exchange), same whether the issuer returned that token again.
func (r *Refresher) learn(tok exchange.Token, left time.Duration, same bool) {
	switch {
	case left <= 0:
	case same && r.aimed && !tok.Expiry.IsZero():
		// Only an exchange at the refresh-ahead point teaches anything:
		// reuse at an interval step, long before expiry, is expected.
		if r.window == 0 || left < r.window {
			r.window = left
		}
	case !same && r.window > 0 && left >= r.window:
		// The issuer minted anew where it used to reuse: its rule changed.
		r.window = 0
	}
	if same {
		r.sched.own = 0
		return
	}
	// A new token teaches what the band of rule 1 rests on: the full life
	// the issuer gives (and whether the tokens are the pod's own), and the
	// period, how much later than the last token's this one expires.
	now := r.now()
	var life time.Duration
	if !tok.Expiry.IsZero() {
		life = tok.Expiry.Sub(now)
	}
	// Pods that share the issuer's tokens see the same expiries, so the
	// same period, whenever each asked; the life a shared token arrives
	// with depends on when the pod asked.
	var period time.Duration
	if old := r.held.Expiry; !old.IsZero() && left > 0 && tok.Expiry.After(old) {
		period = tok.Expiry.Sub(old)
	}
	// A token minted for this request arrives with the full life the
	// issuer gives, and expires as much later than the last one as that
	// one was held; after ownAfter in a row the tokens are the pod's own.
	held := now.Sub(r.sched.gotAt)
	switch {
	case period > 0 && life >= r.sched.fullLife-ownSlack && period-held < ownSlack && held-period < ownSlack:
		r.sched.own++
	case left > 0 || life <= 0:
		r.sched.own = 0
	}
	if life < r.sched.fullLife/2 {
		r.sched.fullLife = 0 // the issuer's tokens became much shorter
	}
	r.sched.fullLife = max(r.sched.fullLife, life)
	r.sched.period, r.sched.gotAt = period, now
}

// nextRefresh applies rules 1, 2 and 4: the delay until the next exchange,
// and the wall time by which it is due when the token's expiry is known.
func (r *Refresher) nextRefresh(tok exchange.Token) (time.Duration, time.Time) {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	redraw := r.aimed
	r.aimed = false
	now := r.now().Round(0)
	var delay time.Duration
	switch {
	case tok.Expiry.IsZero():
		delay = jittered(interval, r.rand())
	case !tok.CredentialExpiry.IsZero() && tok.CredentialExpiry.Sub(tok.Expiry).Abs() < time.Second:
		// The issuer cut the token's life short at the credential's end,
		// and no exchange before it gets a longer one: keep the
		// interval's cadence, and ask at the end for the refusal.
		delay = min(jittered(interval, r.rand()), max(tok.Expiry.Sub(now), tok.CredentialExpiry.Sub(now)))
	default:
		delay, r.aimed = r.toward(tok.Expiry, now, interval, redraw)
	}
	if r.firstWait {
		// Pods that start together (a rollout, a node's restart) would
		// keep in step for good: spread the first refresh over the
		// second half of its delay.
		delay = time.Duration(float64(delay) * (1 - 0.5*r.rand()))
		r.firstWait, r.aimed = false, false
	}
	delay = max(delay, r.floor())
	if tok.Expiry.IsZero() {
		return delay, time.Time{}
	}
	return delay, now.Add(delay)
}

// toward returns the delay until the next exchange for a token that
// expires at exp, and whether that exchange is at the refresh-ahead point;
// redraw asks for a new point (the last one left the token held).
func (r *Refresher) toward(exp, now time.Time, interval time.Duration, redraw bool) (time.Duration, bool) {
	left := exp.Sub(now)
	lo, hi := r.band(left)
	if hi-lo >= interval {
		// The first interval step that lands in the band is the point:
		// each pod keeps its own random phase, one exchange per interval.
		step := jittered(interval, r.rand())
		if !r.sched.stepping {
			// Entering from a point drawn back from the shared expiry:
			// move to a random phase, or the steps keep the narrower
			// spread of those points.
			step = time.Duration(r.rand() * float64(interval))
			r.sched.stepping = true
		}
		if step < left-hi {
			return step, false
		}
		return min(step, left-lo), true
	}
	r.sched.stepping = false
	// The point is drawn once per token, and again only after an exchange
	// there (or a later one) still left this token held: interval steps
	// then lead to one fixed point.
	if redraw || !r.aimFor.Equal(exp) || !r.aimAt.After(now) {
		r.aimFor = exp
		r.aimAt = exp.Add(-(lo + time.Duration(r.rand()*float64(hi-lo))))
	}
	ahead := r.aimAt.Sub(now)
	if ahead <= interval {
		return ahead, true
	}
	// Steps placed back from the point, a jittered interval apart, end on it
	// (a 15-minute token: three exchanges at 5m, not four), and keep its
	// randomness instead of converging with the fleet's.
	steps := (ahead + interval - 1) / interval
	return min(ahead-(steps-1)*jittered(interval, r.rand()), interval), false
}

// jittered returns d less up to intervalJitter of it, u being in [0, 1).
func jittered(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (1 - intervalJitter*u))
}

// band returns the range the refresh-ahead margin is drawn from (rule 1),
// hi no more than left, the held token's remaining life: [w/6, w] with the
// reuse window w known; [life/6, life/4] for the pod's own tokens, life
// being the issuer's full life; else [h/6, h], h the larger of life/2 and
// the period (how much later than the last token's the held one expires),
// or [life/12, life/2] for a first token.
func (r *Refresher) band(left time.Duration) (lo, hi time.Duration) {
	life := max(r.sched.fullLife, left)
	switch {
	case r.window > 0:
		w := min(r.window, left)
		return w / 6, w
	case r.sched.own >= ownAfter:
		lo, hi = life/6, life/4
	default:
		h := max(r.sched.period, life/2)
		lo, hi = h/6, h
	}
	return min(lo, left), min(hi, left)
}
