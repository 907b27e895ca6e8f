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
	if len(token) > maxLen {
		return time.Time{}, false
	}
	first := strings.IndexByte(token, '.')
	if first <= 0 {
		return time.Time{}, false
	}
	rest := token[first+1:]
	second := strings.IndexByte(rest, '.')
	if second <= 0 || strings.IndexByte(rest[second+1:], '.') >= 0 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(rest[:second], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs <= 0 || secs > 1<<40 {
		return time.Time{}, false
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), true
}
