// Package fakeissuer is a stand-in for the control plane's token endpoint,
// for tests and for running tokend locally without a cluster.
//
// Issuer checks credentials exactly as the control plane does (see
// shared/protocol.md): for the encrypted-session exchange it accepts only
// GET /token with "Authorization: Bearer " (case-sensitive) followed by
// padded standard base64 of RSA-OAEP(SHA-256, MGF1-SHA-256, empty label)
// ciphertext of a session id of at least 8 characters without whitespace.
// It mints JWTs signed with its own key and, like the control plane, hands
// out the same token until fewer than CacheFloor remain.
//
// BearerIssuer serves the successor control plane's token endpoint as
// implemented: GET /token with a run-scoped capability, a fresh token each
// time.
//
// Tests script failures with Push: each pushed Fault answers one request
// before normal service resumes.
package fakeissuer

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Fault answers one request in place of the issuer's normal logic.
type Fault func(w http.ResponseWriter, r *http.Request)

// Issuer is an http.Handler serving the token endpoint. Configure its fields
// before serving; afterwards use only its methods, which are safe for
// concurrent use.
type Issuer struct {
	script

	// Key decrypts session-id credentials and signs minted tokens.
	Key *rsa.PrivateKey
	// Lifetime of minted tokens; 15 minutes when zero.
	Lifetime time.Duration
	// CacheFloor: a cached token is handed out until fewer than this
	// remain; 30 s when zero. Set it to a negative value to mint a new
	// token on every request.
	CacheFloor time.Duration
	// ExpiresAt, when true, adds an "expires_at" field (Unix seconds) to
	// answers; the deployed control plane does not send one.
	ExpiresAt bool
	// Now is the issuer's clock; time.Now when nil.
	Now func() time.Time

	mu     sync.Mutex // guards cached, exp, seq, sessions
	cached string
	exp    time.Time
	seq    int
	// sessions records each accepted session id; tests compare against it.
	sessions []string

	issued atomic.Int64
}

// Issued returns how many distinct tokens the issuer has minted.
func (s *Issuer) Issued() int64 { return s.issued.Load() }

// Current returns the token the issuer hands out now ("" before the first).
func (s *Issuer) Current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cached
}

// Sessions returns the session ids accepted so far, in order.
func (s *Issuer) Sessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sessions...)
}

// Rotate forgets the cached token, so the next request mints a new one.
func (s *Issuer) Rotate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached = ""
}

func (s *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.front(w, r, http.MethodGet) {
		return
	}
	sid, status := s.decryptSession(r.Header.Get("Authorization"))
	if status != http.StatusOK {
		plain(w, status, http.StatusText(status))
		return
	}
	tok, exp, err := s.token(sid)
	if err != nil {
		plain(w, http.StatusInternalServerError, "could not mint a token")
		return
	}
	s.writeToken(w, tok, exp)
}

// decryptSession applies the control plane's credential checks, returning
// the session id and 200, or the status the control plane would answer.
func (s *Issuer) decryptSession(h string) (string, int) {
	const prefix = "Bearer "
	if !strings.HasPrefix(h, prefix) {
		return "", http.StatusUnauthorized
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(h[len(prefix):])
	if err != nil {
		return "", http.StatusUnauthorized
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, s.Key, ct, nil)
	if err != nil {
		return "", http.StatusUnauthorized
	}
	sid := string(pt)
	if len(sid) < 8 || strings.IndexFunc(sid, unicode.IsSpace) >= 0 {
		return "", http.StatusForbidden
	}
	return sid, http.StatusOK
}

// token returns the cached token, or mints one when fewer than CacheFloor
// remain on it.
func (s *Issuer) token(sid string) (string, time.Time, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = append(s.sessions, sid)
	floor := s.CacheFloor
	if floor == 0 {
		floor = 30 * time.Second
	}
	if s.cached != "" && floor >= 0 && s.exp.Sub(now) >= floor {
		return s.cached, s.exp, nil
	}
	life := s.Lifetime
	if life == 0 {
		life = 15 * time.Minute
	}
	s.seq++
	exp := now.Add(life)
	tok, err := s.mint(now, exp, s.seq)
	if err != nil {
		return "", time.Time{}, err
	}
	s.cached, s.exp = tok, exp
	s.issued.Add(1)
	return tok, exp, nil
}

// mint signs an RS256 JWT with the issuer's key.
func (s *Issuer) mint(iat, exp time.Time, seq int) (string, error) {
	return signJWT(s.Key, map[string]any{
		"iss": "fakeissuer", "sub": "tokend-local", "jti": fmt.Sprint(seq),
		"iat": iat.Unix(), "exp": exp.Unix(),
	})
}

func (s *Issuer) writeToken(w http.ResponseWriter, tok string, exp time.Time) {
	body := map[string]any{"token": tok}
	if s.ExpiresAt {
		body["expires_at"] = exp.Unix()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body) // Encode appends the newline the control plane sends.
}

func (s *Issuer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}
