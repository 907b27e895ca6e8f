package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// answer is the proxy's own answer to a request, in place of a token it
// cannot send, of a target it refuses or of the upstream's answer: never a
// 401 (see the package doc). Its Error is what the client reads.
type answer struct {
	code    int
	outcome string
	msg     string
}

func (a *answer) Error() string { return "tokend proxy: " + a.msg }

// The proxy's answers that take no detail.
var (
	errOverloaded  = &answer{http.StatusServiceUnavailable, OutcomeOverloaded, "too many requests in flight; retry shortly"}
	errNoToken     = &answer{http.StatusServiceUnavailable, OutcomeNoToken, "no token yet; retry shortly"}
	errExpired     = &answer{http.StatusServiceUnavailable, OutcomeExpired, "the token has expired and no fresh one came; retry shortly"}
	errUnreachable = &answer{http.StatusBadGateway, OutcomeUpstreamError, "the upstream could not be reached"}
	errTimeout     = &answer{http.StatusGatewayTimeout, OutcomeUpstreamError, "the upstream did not answer in time"}
)

func withdrawn(reason string) *answer {
	return &answer{http.StatusForbidden, OutcomeWithdrawn,
		"the token was withdrawn, the control plane refused this session's credential: " + reason}
}

// token returns a token fit to send and the context that ends at its
// withdrawal: it waits up to FirstTokenWait for the first, and asks for a
// fresh one (refreshWait at most) for an expired one; never a withdrawn one.
// Errors: errNoToken, errExpired, a withdrawn answer, or ctx's.
func (p *Proxy) token(ctx context.Context) (secret.String, context.Context, error) {
	if reason, _ := p.src.Withdrawal(); reason != "" {
		return secret.String{}, nil, withdrawn(reason) // also before any token
	}
	if _, _, held := p.src.Token(); !held { // none yet: wait for the first
		select {
		case <-p.src.Ready():
		case <-time.After(p.cfg.FirstTokenWait):
			return secret.String{}, nil, errNoToken
		case <-ctx.Done():
			return secret.String{}, nil, ctx.Err()
		}
	}
	for refreshed := false; ; refreshed = true {
		// gone is taken before the token: a withdrawal in between ends it.
		reason, gone := p.src.Withdrawal()
		if reason != "" {
			return secret.String{}, nil, withdrawn(reason)
		}
		if tok, exp, ok := p.src.Token(); ok && p.usable(exp) {
			return tok, gone, nil
		}
		if refreshed {
			return secret.String{}, nil, errExpired
		}
		rctx, cancel := context.WithTimeout(ctx, refreshWait)
		if err := p.src.Refresh(rctx); err != nil {
			p.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "proxy: no fresh token for a request", slog.String("error", err.Error()))
		}
		cancel()
		if err := ctx.Err(); err != nil {
			return secret.String{}, nil, err
		}
	}
}

// usable reports whether a token expiring at exp may be sent now.
func (p *Proxy) usable(exp time.Time) bool {
	return exp.IsZero() || p.cfg.Now().Add(minRemaining).Before(exp)
}
