package fakeissuer

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ambient-code/tokend/internal/jwtexp"
)

// BearerIssuer is an http.Handler serving the successor control plane's
// token endpoint as implemented so far (protocol.md section 3). It
// answers, in this order:
//
//   - GET /healthz: 200 ok; any other path but /token: 404.
//   - a method other than GET: 405.
//   - no "Bearer " credential, or one other than Capability: 401.
//   - Capability past the exp of its claims (when it has one): 401.
//   - after Revoke, until Reinstate: 403 "runner access revoked" (the
//     session was stopped or restarted).
//   - otherwise 200, Cache-Control: no-store, and a JSON body holding a
//     new opaque token in "token" and its expiry in "expires_at" (Unix
//     seconds), never past the capability's exp: a token per request,
//     none cached.
//
// Configure its fields before serving; afterwards use only its methods,
// which are safe for concurrent use. Push scripts failures as for Issuer.
type BearerIssuer struct {
	script

	// Capability is the one credential accepted.
	Capability string
	// Lifetime of issued tokens; five minutes when zero.
	Lifetime time.Duration
	// Now is the issuer's clock; time.Now when nil.
	Now func() time.Time

	seq     atomic.Int64
	revoked atomic.Bool
}

// Revoke makes every later request a 403 "runner access revoked", as the
// successor answers once the session is stopped or restarted.
func (s *BearerIssuer) Revoke() { s.revoked.Store(true) }

// Reinstate undoes Revoke (a refusal that was a mistake).
func (s *BearerIssuer) Reinstate() { s.revoked.Store(false) }

// Issued returns how many tokens the issuer has minted.
func (s *BearerIssuer) Issued() int64 { return s.seq.Load() }

func (s *BearerIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.front(w, r, http.MethodGet) {
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.Capability)) != 1 {
		plain(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	life := s.Lifetime
	if life == 0 {
		life = 5 * time.Minute
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	exp := now.Add(life)
	if end, ok := jwtexp.Expiry(s.Capability); ok {
		if !now.Before(end) {
			plain(w, http.StatusUnauthorized, "capability expired")
			return
		}
		if end.Before(exp) {
			exp = end
		}
	}
	if s.revoked.Load() {
		plain(w, http.StatusForbidden, "runner access revoked")
		return
	}
	seq := s.seq.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":      fmt.Sprintf("fake-capability-token-%d-%d", seq, now.UnixNano()),
		"expires_at": exp.Unix(),
	})
}
