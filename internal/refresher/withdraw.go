package refresher

import (
	"log/slog"

	"github.com/ambient-code/tokend/internal/exchange"
)

// withdraw applies rule 8 to err, a definitive refusal: the Sink's
// withdrawal, the Observers, and the refresher's own forgetting.
func (r *Refresher) withdraw(err error) {
	reason := exchange.Reason(err)
	if _, werr := r.Sink.Withdraw(reason); werr != nil {
		r.tell(func(o Observer) { o.StoreFailed(werr) })
		// Not logged as its own line: the refusal's line carries it, and
		// the next refusal writes it again.
		r.withdrawErr = werr
	} else {
		r.withdrawErr = nil
	}
	r.tell(func(o Observer) { o.Withdrawn(reason) })
	r.held, r.unstored = exchange.Token{}, nil
	r.window, r.sched, r.aimed = 0, schedState{}, false
	r.entered = r.withdrawn == ""
	r.withdrawn = reason
}

// logRefusal logs a refusal with attrs (reason, failure count, next
// delay): the one that began the withdrawal at error level, later ones at
// debug (one line per change of state, rule 8).
func (r *Refresher) logRefusal(attrs []any) {
	if r.withdrawErr != nil {
		attrs = append(attrs, slog.String("write_error", r.withdrawErr.Error()))
	}
	if !r.entered {
		r.logger().Debug("refused again; the token stays withdrawn", attrs...)
		return
	}
	r.entered = false
	r.logger().Error("token withdrawn: the control plane refused the credential definitively; "+
		"consumers get no token until it issues one again, which tokend keeps asking for", attrs...)
}

// restored ends a withdrawal with tok, the token just stored.
func (r *Refresher) restored(tok exchange.Token) {
	if r.withdrawn == "" {
		return
	}
	r.logger().Info("token restored: the control plane issued a token again after refusing",
		slog.String("fingerprint", tok.Value.Fingerprint()), slog.String("refused_for", r.withdrawn))
	r.withdrawn, r.entered = "", false
}
