package fakeissuer

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// BearerIssuer is an http.Handler serving the successor control plane's
// token endpoint as implemented so far (protocol.md section 3). It
// answers, in this order:
//
//   - GET /healthz: 200 ok; any other path but /token: 404.
//   - a method other than GET: 405.
//   - no "Bearer " credential, or one other than Capability: 401.
//   - otherwise 200, Cache-Control: no-store, and a JSON body holding a
//     new opaque token in "token" and its expiry in "expires_at" (Unix
//     seconds): a token per request, none cached.
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

	seq atomic.Int64
}

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
	seq := s.seq.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":      fmt.Sprintf("fake-capability-token-%d-%d", seq, now.UnixNano()),
		"expires_at": now.Add(life).Unix(),
	})
}
