package daemon

// This file is the handoff from init to run: run adopts the token init
// noted (tokendir.Handoff), so that a pod start costs one exchange, not two.

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/tokendir"
)

// adoptLeft is the least part of its life at init that a token must have
// left for run to adopt it; the refresher replaces a token at least a fifth
// of its life before expiry, so it would keep this one a while yet.
const adoptLeft = 0.5

// issuer names the issuer of cfg's tokens in the handoff: run adopts only
// a token from the issuer it would ask.
func issuer(cfg *Config) string {
	return cfg.Auth + " " + exchange.SafeURL(cfg.TokenURL.String())
}

// adoptInit has r store the token init wrote instead of exchanging at
// start (refresher.Adopt), when adoptable allows it, and logs either way
// when init left a note.
func adoptInit(r *refresher.Refresher, dir *tokendir.Dir, cfg *Config, now time.Time, log *slog.Logger) {
	tok, err := adoptable(dir, cfg, now)
	switch {
	case errors.Is(err, tokendir.ErrNoHandoff):
		return
	case err != nil:
		log.Info("not adopting the token tokend init wrote; exchanging now", slog.String("reason", err.Error()))
		return
	}
	r.Adopt(tok)
	log.Info("adopted the token tokend init wrote; no exchange at start", slog.String("fingerprint", tok.Value.Fingerprint()),
		slog.Time("expires_at", tok.Expiry), slog.Duration("expires_in", tok.Expiry.Sub(now).Round(time.Second)))
}

// adoptable takes init's handoff (tokendir.Dir.TakeHandoff: the token file
// still holds its token) and returns that token when run may adopt it;
// otherwise the error says why (tokendir.ErrNoHandoff when init left none).
func adoptable(dir *tokendir.Dir, cfg *Config, now time.Time) (exchange.Token, error) {
	h, value, err := dir.TakeHandoff()
	if err != nil {
		return exchange.Token{}, err
	}
	age, interval := now.Sub(h.WrittenAt), cfg.RefreshInterval
	if interval <= 0 {
		interval = refresher.DefaultInterval
	}
	switch {
	case h.Issuer != issuer(cfg):
		return exchange.Token{}, fmt.Errorf("init asked %s, run asks %s", h.Issuer, issuer(cfg))
	case h.Expiry.IsZero():
		return exchange.Token{}, errors.New("its expiry is unknown")
	case age < 0 || age > interval:
		return exchange.Token{}, fmt.Errorf("init wrote it at %s, not within the refresh interval (%s) before now", h.WrittenAt.Format(time.RFC3339), interval)
	}
	if life, left := h.Expiry.Sub(h.WrittenAt), h.Expiry.Sub(now); float64(left) < adoptLeft*float64(life) {
		return exchange.Token{}, fmt.Errorf("it expires in %s, less than half its life of %s", left.Round(time.Second), life.Round(time.Second))
	}
	return exchange.Token{Value: value, Expiry: h.Expiry, ExpirySource: "tokend init"}, nil
}
