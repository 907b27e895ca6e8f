package refresher

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// logSuccess logs a stored token: info when it changed, debug otherwise.
func (r *Refresher) logSuccess(tok exchange.Token, changed bool) {
	log := r.logger()
	attrs := []any{slog.String("fingerprint", tok.Value.Fingerprint())}
	if !tok.Expiry.IsZero() {
		attrs = append(attrs,
			slog.Time("expires_at", tok.Expiry),
			slog.Duration("expires_in", tok.Expiry.Sub(r.now()).Round(time.Second)),
			slog.String("expiry_source", tok.ExpirySource))
	}
	if r.failures > 0 {
		attrs = append(attrs, slog.Int("after_failures", r.failures))
	}
	if changed {
		log.Info("token updated", attrs...)
	} else {
		log.Debug("token unchanged", attrs...)
	}
}

// logFailure logs a failed attempt, with the delay before the next one.
func (r *Refresher) logFailure(err error, delay time.Duration) {
	attrs := []any{
		slog.Int("consecutive_failures", r.failures),
		slog.Duration("retry_in", delay.Round(time.Millisecond)),
	}
	if code := exchange.StatusCode(err); code != 0 {
		attrs = append(attrs, slog.Int("status", code))
	}
	if exchange.Classify(err) == exchange.Refused {
		// One line per change of state (rule 8): the refusal that began
		// the withdrawal at error level, later ones at debug.
		attrs = append([]any{slog.String("reason", r.withdrawn)}, attrs...)
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
		return
	}
	attrs = append([]any{slog.String("error", err.Error())}, attrs...)
	level := slog.LevelWarn
	if !exchange.Retryable(err) && !errors.Is(err, context.Canceled) {
		level = slog.LevelError
	}
	msg := "exchange failed, will retry"
	if errors.Is(err, ErrStore) {
		msg = "storing the token failed, will store it again before any new exchange"
	}
	r.logger().Log(context.Background(), level, msg, attrs...)
}

// warn warns once each about what tok tells of the issuer and the
// credential: a life under shortLife (the floor then decides how often
// tokend exchanges), the issuer's clock, an expiry out of range, and the
// credential's end within an hour or a day (the control plane refuses it
// from then on and the token is withdrawn, rule 8).
func (r *Refresher) warn(tok exchange.Token) {
	now := r.now()
	if left := tok.Expiry.Sub(now); !tok.Expiry.IsZero() && left < shortLife {
		r.warnOnce("short-life", "the issuer hands out tokens that live only seconds; tokend exchanges at most once per floor",
			slog.Duration("expires_in", left.Round(time.Millisecond)), slog.Duration("floor", r.floor()))
	}
	if tok.Skew != 0 {
		r.warnOnce("skew", "the issuer's clock differs from this node's; expiries are carried over to this node's clock",
			slog.Time("issuer_time", now.Add(tok.Skew).Round(time.Second)), slog.Time("local_time", now.Round(time.Second)),
			slog.Duration("skew", tok.Skew.Round(time.Second)))
	}
	if tok.IgnoredExpiry != "" {
		r.warnOnce("ignored-expiry", "the issuer's expiry is out of range and treated as unknown; refreshing on the interval",
			slog.String("reason", tok.IgnoredExpiry))
	}
	if tok.CredentialExpiry.IsZero() {
		return
	}
	left := tok.CredentialExpiry.Sub(now)
	for _, notice := range []time.Duration{time.Hour, 24 * time.Hour} {
		if left <= notice {
			r.warnOnce("credential-"+notice.String(), "the bearer credential (the run capability) expires soon; "+
				"the control plane refuses it from then on and the token is withdrawn: end the run, or give tokend a new capability before",
				slog.Time("credential_expires_at", tok.CredentialExpiry), slog.Duration("credential_expires_in", left.Round(time.Second)))
			return
		}
	}
}

// warnOnce logs msg at warning level the first time key is seen, and at
// debug level after that.
func (r *Refresher) warnOnce(key, msg string, attrs ...any) {
	level := slog.LevelDebug
	if !r.warned[key] {
		if r.warned == nil {
			r.warned = map[string]bool{}
		}
		r.warned[key] = true
		level = slog.LevelWarn
	}
	r.logger().Log(context.Background(), level, msg, attrs...)
}
