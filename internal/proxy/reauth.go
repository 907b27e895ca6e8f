package proxy

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// remembered is how many tokens reauth keeps in each of its lists.
const remembered = 4

// reauth decides which 401s from the upstream may cause an exchange (step
// 6 of the package doc), so that an upstream answering 401 to everything
// costs the issuer a bounded number of exchanges. It is safe for
// concurrent use.
type reauth struct {
	p *Proxy

	mu      sync.Mutex      // guards the fields below
	spent   []secret.String // tokens whose 401 caused an exchange, oldest first
	verdict []secret.String // tokens that such exchanges obtained, oldest first
	recent  []time.Time     // when each such exchange of the last minute started
	pending *shared         // the exchange under way, if any
}

// shared is one exchange caused by a 401, awaited by every request whose
// 401 came on the same token.
type shared struct {
	old  secret.String // the token the 401 came on
	done chan struct{} // closed when tok, ok and err are set
	tok  secret.String
	ok   bool
	err  error // the Source's failure to refresh
}

// fresh returns a token to retry a request that got a 401 with old, and
// whether there is one; err is the Source's failure when an exchange was
// tried and failed, nil when none was tried or it answered.
func (a *reauth) fresh(ctx context.Context, old secret.String) (_ secret.String, ok bool, err error) {
	p := a.p
	if tok, exp, ok := p.src.Token(); ok && p.usable(exp) && !tok.Equal(old) {
		return tok, true, nil
	}
	a.mu.Lock()
	if s := a.pending; s != nil && s.old.Equal(old) {
		a.mu.Unlock()
		select {
		case <-s.done:
			return s.tok, s.ok, s.err
		case <-ctx.Done():
			return secret.String{}, false, ctx.Err()
		}
	}
	if why := a.refusedLocked(old); why != "" {
		a.mu.Unlock()
		p.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "proxy: upstream answered 401; no exchange for it",
			slog.String("reason", why), slog.String("token", old.Fingerprint()))
		return secret.String{}, false, nil
	}
	s := &shared{old: old, done: make(chan struct{})}
	a.pending = s
	a.recent = append(a.recent, p.cfg.Now())
	a.mu.Unlock()

	// Shared by the requests that wait on it: it must not end with this one.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshWait)
	err = p.src.Refresh(rctx)
	cancel()
	tok, exp, held := p.src.Token()
	s.ok = held && p.usable(exp) && !tok.Equal(old)
	if s.ok {
		s.tok = tok
	}
	s.err = err

	a.mu.Lock()
	if err == nil {
		a.spent = remember(a.spent, old)
	}
	if s.ok {
		a.verdict = remember(a.verdict, tok)
	}
	a.pending = nil
	a.mu.Unlock()
	close(s.done)
	return s.tok, s.ok, s.err
}

// refusedLocked says why a 401 on old may not cause an exchange, or "".
func (a *reauth) refusedLocked(old secret.String) string {
	has := func(l []secret.String) bool { return slices.ContainsFunc(l, old.Equal) }
	switch {
	case has(a.verdict):
		return "the token was just obtained after a 401"
	case has(a.spent):
		return "a 401 on this token already caused an exchange"
	}
	cutoff := a.p.cfg.Now().Add(-time.Minute)
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
