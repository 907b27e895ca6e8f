package proxy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// Reasons a request gets no token; their text is what the client reads in
// the 503's body.
var (
	errNoToken = errors.New("tokend proxy: no token yet; retry shortly")
	errExpired = errors.New("tokend proxy: the token has expired and no fresh one came; retry shortly")
)

func outcomeOf(err error) string {
	switch {
	case errors.Is(err, errExpired):
		return OutcomeExpired
	case errors.Is(err, errNoToken):
		return OutcomeNoToken
	}
	return OutcomeCanceled
}

// token returns a token fit to send: it waits up to FirstTokenWait for the
// first one, and when the held one has expired it asks for a fresh one.
// Its errors are errNoToken, errExpired, or ctx's error.
func (p *Proxy) token(ctx context.Context) (secret.String, error) {
	if err := p.awaitFirst(ctx); err != nil {
		return secret.String{}, err
	}
	tok, exp, ok := p.src.Token()
	if ok && p.usable(exp) {
		return tok, nil
	}
	tok, ok = p.refresh(ctx, secret.String{})
	if !ok {
		if err := ctx.Err(); err != nil {
			return secret.String{}, err
		}
		return secret.String{}, errExpired
	}
	return tok, nil
}

// awaitFirst waits until the Source holds its first token, FirstTokenWait
// at most.
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
	return exp.IsZero() || p.cfg.Now().Add(p.cfg.MinRemaining).Before(exp)
}

// refresh asks the Source for a fresh token, RefreshWait at most, and
// returns it when it is usable and differs from old.
func (p *Proxy) refresh(ctx context.Context, old secret.String) (secret.String, bool) {
	rctx, cancel := context.WithTimeout(ctx, p.cfg.RefreshWait)
	defer cancel()
	if err := p.src.Refresh(rctx); err != nil {
		// The daemon logs its own exchange failures; this is the request's view.
		p.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "proxy: no fresh token for a request", slog.String("error", err.Error()))
	}
	tok, exp, ok := p.src.Token()
	if !ok || !p.usable(exp) || tok.Equal(old) {
		return secret.String{}, false
	}
	return tok, true
}
