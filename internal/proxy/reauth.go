package proxy

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ambient-code/tokend/internal/secret"
)

// reauth decides which upstream 401s may cause an exchange (step 6 of the
// package doc), so that an upstream answering 401 to everything costs the
// issuer a bounded number. It is safe for concurrent use.
type reauth struct {
	exchanges singleflight.Group // one exchange per token a 401 came on, shared by its 401s

	mu     sync.Mutex      // guards the fields below
	seen   []secret.String // tokens whose 401 caused an exchange, and those such exchanges obtained, oldest first
	recent []time.Time     // when each such exchange of the last minute started
}

// fresh returns a token to retry a request that got a 401 with old, and
// whether there is one; err is the Source's failure when an exchange was
// tried and failed, nil when none was tried or it answered. The exchange
// is shared by the requests that wait on it: it does not end with ctx.
func (p *Proxy) fresh(ctx context.Context, old secret.String) (_ secret.String, ok bool, err error) {
	ch := p.reauth.exchanges.DoChan(old.Reveal(), func() (any, error) { return p.exchange(context.WithoutCancel(ctx), old) })
	select {
	case r := <-ch:
		tok := r.Val.(secret.String)
		return tok, !tok.IsZero(), r.Err
	case <-ctx.Done():
		return secret.String{}, false, ctx.Err()
	}
}

// exchange returns the held token if it is not old, else asks the Source
// for a fresh one, if the bounds allow it; the zero String when none came.
func (p *Proxy) exchange(ctx context.Context, old secret.String) (secret.String, error) {
	if tok, exp, ok := p.src.Token(); ok && p.usable(exp) && !tok.Equal(old) {
		return tok, nil
	}
	a := &p.reauth
	a.mu.Lock()
	now := p.cfg.Now()
	a.recent = slices.DeleteFunc(a.recent, func(t time.Time) bool { return !t.After(now.Add(-time.Minute)) })
	why := ""
	switch {
	case slices.ContainsFunc(a.seen, old.Equal):
		why = "a 401 on this token already caused an exchange, or it came from one"
	case len(a.recent) >= max401Refreshes:
		why = "401s caused as many exchanges as allowed in the last minute"
	default:
		a.recent = append(a.recent, now)
	}
	a.mu.Unlock()
	if why != "" {
		p.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "proxy: upstream answered 401; no exchange for it",
			slog.String("reason", why), slog.String("token", old.Fingerprint()))
		return secret.String{}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, refreshWait)
	err := p.src.Refresh(rctx)
	cancel()
	tok, exp, held := p.src.Token()
	if !held || !p.usable(exp) || tok.Equal(old) {
		tok = secret.String{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		a.seen = append(a.seen, old)
	}
	if !tok.IsZero() {
		a.seen = append(a.seen, tok)
	}
	a.seen = slices.Delete(a.seen, 0, max(0, len(a.seen)-8)) // keeps the last 8
	return tok, err
}
