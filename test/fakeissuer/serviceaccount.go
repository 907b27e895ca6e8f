package fakeissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServiceAccountAudience is the audience ServiceAccountIssuer requires of
// the ServiceAccount tokens it accepts.
const ServiceAccountAudience = "ambient-control-plane-tokenserver"

// Grant is the request body ServiceAccountIssuer accepts, byte for byte.
const Grant = `{"grant":"runtime-only"}`

// maxGrantBody is the largest request body the successor contract allows.
const maxGrantBody = 1 << 10

// Exchange describes one request ServiceAccountIssuer answered with a token.
type Exchange struct {
	// ServiceAccountToken is the bearer the request carried.
	ServiceAccountToken string
	// RefreshCredential is the x-ambient-capability-refresh header, or "".
	RefreshCredential string
	// Token is the token issued in answer.
	Token string
}

// ServiceAccountIssuer is an http.Handler serving the successor exchange
// (protocol.md section 2). It answers, in this order:
//
//   - GET /healthz: 200 ok; any other path but /token: 404.
//   - a method other than POST: 405.
//   - a Content-Type other than application/json: 415.
//   - a body over 1 KiB: 413; a body other than exactly Grant: 400.
//   - no "Bearer " credential, or one that is not an RS256 JWT signed by
//     ClusterKey with audience ServiceAccountAudience and unexpired: 401.
//   - otherwise 200, Cache-Control: no-store, and a JSON body holding a
//     new RS256 JWT in "token" and its expiry in "expires_at" (Unix seconds).
//
// Serve it over TLS; it does not check that itself. Configure its fields
// before serving; afterwards use only its methods, which are safe for
// concurrent use. Push scripts failures as for Issuer.
type ServiceAccountIssuer struct {
	script

	// Key signs the tokens it issues.
	Key *rsa.PrivateKey
	// ClusterKey stands in for the cluster's ServiceAccount token signer:
	// MintServiceAccountToken signs with it and requests are verified
	// against it. Key when nil.
	ClusterKey *rsa.PrivateKey
	// Lifetime of issued tokens; two minutes when zero.
	Lifetime time.Duration
	// Now is the issuer's clock; time.Now when nil.
	Now func() time.Time

	mu        sync.Mutex // guards exchanges, current
	exchanges []Exchange
	current   string

	seq atomic.Int64
}

// Issued returns how many tokens the issuer has minted.
func (s *ServiceAccountIssuer) Issued() int64 { return s.seq.Load() }

// Current returns the token issued last ("" before the first).
func (s *ServiceAccountIssuer) Current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Exchanges returns the requests answered with a token so far, in order.
func (s *ServiceAccountIssuer) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exchange(nil), s.exchanges...)
}

// MintServiceAccountToken returns a ServiceAccount token the issuer accepts
// when aud is ServiceAccountAudience and ttl has not passed, as the kubelet
// would project it.
func (s *ServiceAccountIssuer) MintServiceAccountToken(aud string, ttl time.Duration) (string, error) {
	now := s.now()
	return signJWT(s.clusterKey(), map[string]any{
		"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:ambient:tokend-local",
		"aud": []string{aud}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"jti": rand.Text(),
	})
}

func (s *ServiceAccountIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.front(w, r, "") { // POST is checked by check, in its documented order
		return
	}
	if status := s.check(r); status != http.StatusOK {
		plain(w, status, http.StatusText(status))
		return
	}
	sa := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok, exp, err := s.issue(Exchange{ServiceAccountToken: sa, RefreshCredential: r.Header.Get("x-ambient-capability-refresh")})
	if err != nil {
		plain(w, http.StatusInternalServerError, "could not mint a token")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_at": exp.Unix()})
}

// check applies the request checks in the order the type documents,
// returning 200 or the status to answer.
func (s *ServiceAccountIssuer) check(r *http.Request) int {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxGrantBody+1))
	switch {
	case err != nil:
		return http.StatusBadRequest
	case len(body) > maxGrantBody:
		return http.StatusRequestEntityTooLarge
	case string(body) != Grant:
		return http.StatusBadRequest
	}
	sa, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return http.StatusUnauthorized
	}
	if _, err := verifyJWT(&s.clusterKey().PublicKey, sa, ServiceAccountAudience, s.now()); err != nil {
		return http.StatusUnauthorized
	}
	return http.StatusOK
}

// issue mints a token and records the exchange.
func (s *ServiceAccountIssuer) issue(x Exchange) (string, time.Time, error) {
	life := s.Lifetime
	if life == 0 {
		life = 2 * time.Minute
	}
	now := s.now()
	exp := now.Add(life)
	seq := s.seq.Add(1)
	tok, err := signJWT(s.Key, map[string]any{
		"iss": "fakeissuer", "sub": "tokend-local", "jti": fmt.Sprint(seq),
		"iat": now.Unix(), "exp": exp.Unix(),
	})
	if err != nil {
		return "", time.Time{}, err
	}
	x.Token = tok
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exchanges = append(s.exchanges, x)
	s.current = tok
	return tok, exp, nil
}

func (s *ServiceAccountIssuer) clusterKey() *rsa.PrivateKey {
	if s.ClusterKey != nil {
		return s.ClusterKey
	}
	return s.Key
}

func (s *ServiceAccountIssuer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
