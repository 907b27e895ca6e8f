// Package notify is tokend's one way of telling consumers that do not watch
// the token file that the token changed: a signal to the process in a pid
// file, a command, or (under `tokend exec`) the child's change policy.
//
// A Runner observes the refresher. A change is a store of a token other
// than the one stored last (not the first token, nor a lost file written
// again), a withdrawal (once), and the first token after one. Changed never
// blocks the refresh loop: each Notifier has a goroutine, and one busy when
// changes arrive runs once more afterwards, for all of them. Each
// notification counts in tokend_notifications_total{notifier,result}
// ("success" or "failure"); a failure is logged once, naming the setting,
// and the Runner goes on. One that a moment may cure (a pid file not yet
// rewritten by a restarting consumer) is retried after RetryBackoff's
// delays (by default 100 ms growing to 2 s, for 30 s), or at once on the
// next change.
package notify

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
)

// Notifier tells one consumer that the token changed.
type Notifier interface {
	// Name is the notifier's label in metrics and logs: "signal",
	// "command" or "exec".
	Name() string
	// Notify delivers one notification; it returns when it is delivered,
	// failed, or ctx ended.
	Notify(ctx context.Context) error
}

// Runner delivers notifications in the background. Make one with
// NewRunner. It is a refresher.Observer: list it in the refresher's
// Observers, whose goroutine alone calls Stored; Changed is safe for
// concurrent use.
type Runner struct {
	refresher.NopObserver
	// RetryBackoff returns the delays between retries of one
	// notification; NewRunner sets the default above. Set it before Run.
	RetryBackoff func() backoff.BackOff

	notifiers []Notifier
	due       []chan struct{} // one per notifier, buffer 1: the coalescing
	log       *slog.Logger
	total     *prometheus.CounterVec
	last      string // the fingerprint of the token stored last (Stored only)
}

// NewRunner returns a Runner for ns. It registers its counter with reg
// when reg is not nil, and panics if that fails (promauto).
func NewRunner(ns []Notifier, log *slog.Logger, reg prometheus.Registerer) *Runner {
	r := &Runner{notifiers: ns, log: cmp.Or(log, slog.Default()), RetryBackoff: func() backoff.BackOff {
		return backoff.NewExponentialBackOff(backoff.WithInitialInterval(100*time.Millisecond),
			backoff.WithMaxInterval(2*time.Second), backoff.WithMaxElapsedTime(30*time.Second))
	}}
	r.total = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "tokend_notifications_total",
		Help: "Notifications of a token change, by notifier (signal, command) and result (success, failure).",
	}, []string{"notifier", "result"})
	for _, n := range ns {
		r.due = append(r.due, make(chan struct{}, 1))
		for _, res := range []string{"success", "failure"} {
			r.total.WithLabelValues(n.Name(), res)
		}
	}
	return r
}

// withdrawnMark is last while the token is withdrawn: no fingerprint equals it.
const withdrawnMark = "withdrawn"

// Withdrawn calls Changed when a token was held (refresher.Observer): the
// consumers learn that there is none.
func (r *Runner) Withdrawn(string) {
	if r.last != withdrawnMark {
		r.Changed()
	}
	r.last = withdrawnMark
}

// Stored calls Changed when tok differs from the token stored before it; the
// first token is no change (refresher.Observer).
func (r *Runner) Stored(tok exchange.Token, _ bool) {
	fp := tok.Value.Fingerprint()
	if r.last != "" && fp != r.last {
		r.Changed()
	}
	r.last = fp
}

// Changed marks every notifier due. It never blocks.
func (r *Runner) Changed() {
	for _, d := range r.due {
		select {
		case d <- struct{}{}:
		default: // already due: this change coalesces into that one
		}
	}
}

// Run delivers notifications until ctx ends, then returns nil once every
// notification in progress has returned (each honours ctx).
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, n := range r.notifiers {
		wg.Go(func() { r.serve(ctx, n, r.due[i]) })
	}
	wg.Wait()
	return nil
}

func (r *Runner) serve(ctx context.Context, n Notifier, due <-chan struct{}) {
	for {
		select {
		case <-due:
		case <-ctx.Done():
			return
		}
		if err := r.deliver(ctx, n, due); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.total.WithLabelValues(n.Name(), "failure").Inc()
			r.log.Warn("token change notification failed", slog.String("notifier", n.Name()), slog.String("error", err.Error()))
			continue
		}
		r.total.WithLabelValues(n.Name(), "success").Inc()
		r.log.Debug("token change notified", slog.String("notifier", n.Name()))
	}
}

// deliver runs one notification, and retries it while it fails with a
// retryable error.
func (r *Runner) deliver(ctx context.Context, n Notifier, due <-chan struct{}) error {
	b := r.RetryBackoff()
	for {
		err := n.Notify(ctx)
		if err == nil || ctx.Err() != nil || !errors.As(err, new(retryable)) {
			return err
		}
		d := b.NextBackOff()
		if d == backoff.Stop {
			return err
		}
		r.log.Debug("token change notification not delivered yet; retrying", slog.String("notifier", n.Name()), slog.Duration("delay", d), slog.String("error", err.Error()))
		select {
		case <-time.After(d):
		case <-due: // the next change: try at once, with a fresh budget
			b.Reset()
		case <-ctx.Done():
		}
	}
}

// retryable marks an error that a moment may cure.
type retryable struct{ error }
