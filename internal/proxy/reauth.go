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

// remembered is how many tokens reauth keeps in each of its lists.
const remembered = 4

// reauth decides which upstream 401s may cause an exchange (step 6 of the
// package doc), so that an upstream answering 401 to everything costs the
// issuer a bounded number. It is safe for concurrent use.
type reauth struct {
	exchanges singleflight.Group // one exchange per token a 401 came on, shared by its 401s

	mu      sync.Mutex      // guards the fields below
	spent   []secret.String // tokens whose 401 caused an exchange, oldest first
	verdict []secret.String // tokens that such exchanges obtained, oldest first
	recent  []time.Time     // when each such exchange of the last minute started
}

// fresh returns a token to retry a request that got a 401 with old, and
// whether there is one; err is the Source's failure when an exchange was
// tried and failed, nil when none was tried or it answered.
func (p *Proxy) fresh(ctx context.Context, old secret.String) (_ secret.String, ok bool, err error) {
	if tok, exp, ok := p.src.Token(); ok && p.usable(exp) && !tok.Equal(old) {
		return tok, true, nil
	}
	// The exchange is shared by the requests that wait on it: it must not
	// end with this one.
	ch := p.reauth.exchanges.DoChan(old.Reveal(), func() (any, error) { return p.exchange(context.WithoutCancel(ctx), old) })
	select {
	case r := <-ch:
		tok := r.Val.(secret.String)
		return tok, !tok.IsZero(), r.Err
	case <-ctx.Done():
		return secret.String{}, false, ctx.Err()
	}
}

// exchange asks the Source for a fresh token after a 401 on old, if the
// bounds allow it, and returns it, or the zero String when none came.
func (p *Proxy) exchange(ctx context.Context, old secret.String) (secret.String, error) {
	a := &p.reauth
	a.mu.Lock()
	why := p.refusedLocked(old)
	if why == "" {
		a.recent = append(a.recent, p.cfg.Now())
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
		a.spent = remember(a.spent, old)
	}
	if !tok.IsZero() {
		a.verdict = remember(a.verdict, tok)
	}
	return tok, err
}

// refusedLocked says why a 401 on old may not cause an exchange, or "".
func (p *Proxy) refusedLocked(old secret.String) string {
	a := &p.reauth
	has := func(l []secret.String) bool { return slices.ContainsFunc(l, old.Equal) }
	switch {
	case has(a.verdict):
		return "the token was just obtained after a 401"
	case has(a.spent):
		return "a 401 on this token already caused an exchange"
	}
	cutoff := p.cfg.Now().Add(-time.Minute)
	a.recent = slices.DeleteFunc(a.recent, func(t time.Time) bool { return !t.After(cutoff) })
	if len(a.recent) >= max401Refreshes {
		return "401s caused as many exchanges as allowed in the last minute"
	}
	return ""
}

// remember appends tok to l, keeping the last few.
func remember(l []secret.String, tok secret.String) []secret.String {
	l = append(l, tok)
	if len(l) > remembered {
		l = slices.Delete(l, 0, len(l)-remembered)
	}
	return l
}
