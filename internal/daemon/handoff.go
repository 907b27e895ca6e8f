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
// start (refresher.Adopt) when init left a note of it
// (tokendir.Dir.TakeHandoff: the token file still holds it) and run may
// adopt it: same issuer, known expiry, written within the refresh interval
// before now, adoptLeft of its life left. It logs either way when init left
// a note.
func adoptInit(r *refresher.Refresher, dir *tokendir.Dir, cfg *Config, now time.Time, log *slog.Logger) {
	h, value, err := dir.TakeHandoff()
	if errors.Is(err, tokendir.ErrNoHandoff) {
		return
	}
	age, interval := now.Sub(h.WrittenAt), cfg.RefreshInterval
	if interval <= 0 {
		interval = refresher.DefaultInterval
	}
	life, left := h.Expiry.Sub(h.WrittenAt), h.Expiry.Sub(now)
	switch {
	case err != nil:
	case h.Issuer != issuer(cfg):
		err = fmt.Errorf("init asked %s, run asks %s", h.Issuer, issuer(cfg))
	case h.Expiry.IsZero():
		err = errors.New("its expiry is unknown")
	case age < 0 || age > interval:
		err = fmt.Errorf("init wrote it at %s, not within the refresh interval (%s) before now", h.WrittenAt.Format(time.RFC3339), interval)
	case float64(left) < adoptLeft*float64(life):
		err = fmt.Errorf("it expires in %s, less than half its life of %s", left.Round(time.Second), life.Round(time.Second))
	}
	if err != nil {
		log.Info("not adopting the token tokend init wrote; exchanging now", slog.String("reason", err.Error()))
		return
	}
	r.Adopt(exchange.Token{Value: value, Expiry: h.Expiry, ExpirySource: "tokend init"})
	log.Info("adopted the token tokend init wrote; no exchange at start", slog.String("fingerprint", value.Fingerprint()),
		slog.Time("expires_at", h.Expiry), slog.Duration("expires_in", left.Round(time.Second)))
}
