// Package jwtexp reads the expiry of a JSON Web Token without verifying it.
//
// tokend is not the audience of the tokens it carries, so it cannot and must
// not verify their signatures; it only needs to know when a token stops being
// useful, to refresh it ahead of time. Expiry reports the "exp" claim of a
// compact JWS (three base64url segments separated by dots) and nothing else.
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

// Expiry returns the "exp" claim of token when token is a JWT whose payload
// carries a numeric exp (NumericDate: seconds since the Unix epoch, possibly
// fractional). ok is false for an opaque token, a malformed JWT, or a JWT
// without a usable exp. The signature is not checked.
//
// Expiry is safe for concurrent use and never includes token bytes in any
// output.
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
