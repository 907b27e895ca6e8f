package testkit

import (
	"encoding/base64"
	"strconv"
	"time"
)

// JWT returns an unsigned JWT (header {"alg":"none"}, signature "sig")
// carrying claims, a JSON object given verbatim. tokend reads a JWT's exp
// claim without verifying it, so this is all its tests need.
func JWT(claims string) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(`{"alg":"none"}`)) + "." + e.EncodeToString([]byte(claims)) + ".sig"
}

// JWTExpiring returns an unsigned JWT whose only claim is exp, in whole
// Unix seconds.
func JWTExpiring(exp time.Time) string {
	return JWT(`{"exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`)
}

// Capability returns a run capability in the successor control plane's
// format, "acp-runner-v1.<base64url JSON claims>.<signature>", whose claims
// name a session and expire at exp; the signature is a placeholder (tokend
// reads the claims without verifying them).
func Capability(exp time.Time) string {
	claims := `{"sub":"session-1","project":"p1","gen":1,"exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`
	return "acp-runner-v1." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
}
