package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// Reasons a request gets no token, as the client reads them; none is a
// 401 (see the package doc).
var (
	errNoToken = errors.New("tokend proxy: no token yet; retry shortly")
	errExpired = errors.New("tokend proxy: the token has expired and no fresh one came; retry shortly")
)

// withdrawnError is the answer while the token is withdrawn.
type withdrawnError struct{ reason string }

func (e *withdrawnError) Error() string {
	return "tokend proxy: the token was withdrawn, the control plane refused this session's credential: " + e.reason
}

// answerOf returns the status, Retry-After and outcome for err, a reason a
// request gets no token (or a request the upstream refused, see
// retryTransport).
func (p *Proxy) answerOf(err error) (code int, retry time.Duration, outcome string) {
	var we *withdrawnError
	var ua *upstreamAnswer
	switch {
	case errors.As(err, &we):
		return http.StatusForbidden, 0, OutcomeWithdrawn
	case errors.As(err, &ua):
		return ua.code, ua.retry, OutcomeUpstreamRefused
	case errors.Is(err, errExpired):
		return http.StatusServiceUnavailable, retryAfter, OutcomeExpired
	case errors.Is(err, errNoToken):
		return http.StatusServiceUnavailable, retryAfter, OutcomeNoToken
	}
	return 0, 0, OutcomeCanceled
}

// token returns a token fit to send, and the context that ends when it is
// withdrawn: it waits up to FirstTokenWait for the first one, and when the
// held one has expired it asks for a fresh one. A withdrawn token is never
// returned. Its errors are errNoToken, errExpired, a *withdrawnError, or
// ctx's error.
func (p *Proxy) token(ctx context.Context) (secret.String, context.Context, error) {
	if reason, _ := p.src.Withdrawal(); reason != "" {
		return secret.String{}, nil, &withdrawnError{reason} // also before any token
	}
	if err := p.awaitFirst(ctx); err != nil {
		return secret.String{}, nil, err
	}
	// gone is taken before the token: a withdrawal in between ends it.
	reason, gone := p.src.Withdrawal()
	if reason != "" {
		return secret.String{}, nil, &withdrawnError{reason}
	}
	tok, exp, ok := p.src.Token()
	if ok && p.usable(exp) {
		return tok, gone, nil
	}
	tok, ok, _ = p.refresh(ctx, secret.String{})
	if !ok {
		if err := ctx.Err(); err != nil {
			return secret.String{}, nil, err
		}
		if reason, _ := p.src.Withdrawal(); reason != "" {
			return secret.String{}, nil, &withdrawnError{reason}
		}
		return secret.String{}, nil, errExpired
	}
	_, gone = p.src.Withdrawal()
	return tok, gone, nil
}

// awaitFirst waits for the Source's first token, FirstTokenWait at most.
func (p *Proxy) awaitFirst(ctx context.Context) error {
	ready := p.src.Ready()
	select {
	case <-ready:
		return nil
	default:
	}
	t := time.NewTimer(p.cfg.FirstTokenWait)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-t.C:
		return errNoToken
	case <-ctx.Done():
		return ctx.Err()
	}
}

// usable reports whether a token expiring at exp may be sent now.
func (p *Proxy) usable(exp time.Time) bool {
	return exp.IsZero() || p.cfg.Now().Add(minRemaining).Before(exp)
}

// refresh asks the Source for a fresh token, RefreshWait at most, and
// returns it when it is usable, differs from old and is not withdrawn;
// err is the Source's failure to refresh, nil when it answered (perhaps
// with the same token).
func (p *Proxy) refresh(ctx context.Context, old secret.String) (_ secret.String, ok bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, refreshWait)
	defer cancel()
	if err = p.src.Refresh(rctx); err != nil {
		p.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "proxy: no fresh token for a request", slog.String("error", err.Error()))
	}
	tok, exp, held := p.src.Token()
	if reason, _ := p.src.Withdrawal(); !held || reason != "" || !p.usable(exp) || tok.Equal(old) {
		return secret.String{}, false, err
	}
	return tok, true, err
}
