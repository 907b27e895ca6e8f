// Package jwtexp reads the expiry of a JSON Web Token without verifying it:
// tokend is not the audience of the tokens it carries, so it cannot verify
// their signatures, and it needs only to know when one stops being useful.
package jwtexp

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"
)

// maxLen bounds the token length Expiry will decode, so a hostile or corrupt
// value cannot make it allocate without limit.
const maxLen = 64 << 10

// Expiry returns the "exp" claim of token, a compact JWS (three
// dot-separated base64url segments) whose payload carries a numeric exp
// (NumericDate: seconds since the Unix epoch, possibly fractional); ok is
// false for an opaque token, a malformed JWT, or no usable exp. The
// signature is not checked. Safe for concurrent use.
func Expiry(token string) (exp time.Time, ok bool) {
	head, rest, _ := strings.Cut(token, ".")
	claims, _, _ := strings.Cut(rest, ".")
	if len(token) > maxLen || strings.Count(token, ".") != 2 || head == "" || claims == "" {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(claims, "="))
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Exp == nil {
		return time.Time{}, false
	}
	// A JSON number parses to neither NaN nor an infinity without an error.
	secs, err := c.Exp.Float64()
	if err != nil || secs <= 0 || secs > 1<<40 {
		return time.Time{}, false
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), true
}
