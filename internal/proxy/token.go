package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// answer is the proxy's own answer to a request, in place of a token it
// cannot send or of the upstream's 401: never a 401 itself (see the
// package doc). Its text is what the client reads.
type answer struct {
	code    int
	retry   bool // with Retry-After
	outcome string
	msg     string
}

func (a *answer) Error() string { return a.msg }

// The answers to a request that gets no token.
var (
	errNoToken = &answer{http.StatusServiceUnavailable, true, OutcomeNoToken, "tokend proxy: no token yet; retry shortly"}
	errExpired = &answer{http.StatusServiceUnavailable, true, OutcomeExpired, "tokend proxy: the token has expired and no fresh one came; retry shortly"}
)

func withdrawn(reason string) *answer {
	return &answer{http.StatusForbidden, false, OutcomeWithdrawn,
		"tokend proxy: the token was withdrawn, the control plane refused this session's credential: " + reason}
}

// answerOf returns the status, Retry-After and outcome for err: an
// *answer's, or none (code 0) for another error.
func answerOf(err error) (code int, retry time.Duration, outcome string) {
	var a *answer
	if !errors.As(err, &a) {
		return 0, 0, OutcomeCanceled
	}
	if a.retry {
		retry = retryAfter
	}
	return a.code, retry, a.outcome
}

// token returns a token fit to send, and the context that ends when it is
// withdrawn: it waits up to FirstTokenWait for the first one, and when the
// held one has expired it asks for a fresh one. A withdrawn token is never
// returned. Its errors are errNoToken, errExpired, a withdrawn answer, or
// ctx's error.
func (p *Proxy) token(ctx context.Context) (secret.String, context.Context, error) {
	if reason, _ := p.src.Withdrawal(); reason != "" {
		return secret.String{}, nil, withdrawn(reason) // also before any token
	}
	if err := p.awaitFirst(ctx); err != nil {
		return secret.String{}, nil, err
	}
	// gone is taken before the token: a withdrawal in between ends it.
	reason, gone := p.src.Withdrawal()
	if reason != "" {
		return secret.String{}, nil, withdrawn(reason)
	}
	tok, exp, ok := p.src.Token()
	if ok && p.usable(exp) {
		return tok, gone, nil
	}
	// Expired: ask for a fresh one, refreshWait at most.
	rctx, cancel := context.WithTimeout(ctx, refreshWait)
	defer cancel()
	if err := p.src.Refresh(rctx); err != nil {
		p.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "proxy: no fresh token for a request", slog.String("error", err.Error()))
	}
	if err := ctx.Err(); err != nil {
		return secret.String{}, nil, err
	}
	if reason, gone = p.src.Withdrawal(); reason != "" {
		return secret.String{}, nil, withdrawn(reason)
	}
	if tok, exp, ok = p.src.Token(); !ok || !p.usable(exp) {
		return secret.String{}, nil, errExpired
	}
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
