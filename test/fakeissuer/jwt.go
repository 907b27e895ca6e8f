package fakeissuer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// signJWT returns an RS256 compact JWS of claims signed with key.
func signJWT(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := header + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// jwtClaims are the claims verifyJWT checks.
type jwtClaims struct {
	Subject  string   `json:"sub"`
	Audience audience `json:"aud"`
	Expiry   float64  `json:"exp"`
}

// audience is the "aud" claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// verifyJWT checks an RS256 compact JWS against key, that aud is among its
// audiences and that it has not expired at now. The error says which check
// failed, never what the token holds.
func verifyJWT(key *rsa.PublicKey, token, aud string, now time.Time) (jwtClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtClaims{}, errors.New("not a compact JWS")
	}
	enc := base64.RawURLEncoding
	var header struct {
		Alg string `json:"alg"`
	}
	hb, err := enc.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "RS256" {
		return jwtClaims{}, errors.New("header is not RS256")
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return jwtClaims{}, errors.New("signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return jwtClaims{}, errors.New("signature does not verify")
	}
	var c jwtClaims
	cb, err := enc.DecodeString(parts[1])
	if err != nil || json.Unmarshal(cb, &c) != nil {
		return jwtClaims{}, errors.New("claims are not JSON")
	}
	if !slices.Contains(c.Audience, aud) {
		return jwtClaims{}, errors.New("wrong audience")
	}
	if c.Expiry == 0 || !now.Before(time.Unix(int64(c.Expiry), 0)) {
		return jwtClaims{}, errors.New("expired")
	}
	return c, nil
}
