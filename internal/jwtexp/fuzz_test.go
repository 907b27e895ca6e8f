package jwtexp

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// FuzzExpiry feeds Expiry arbitrary tokens. It must not panic, and an
// expiry it reports is after the epoch and at most 2^40 seconds.
func FuzzExpiry(f *testing.F) {
	f.Fuzz(func(t *testing.T, token string) {
		exp, ok := Expiry(token)
		if !ok {
			if !exp.IsZero() {
				t.Fatalf("not ok, but expiry %v", exp)
			}
			return
		}
		if !exp.After(time.Unix(0, 0)) || exp.After(time.Unix(1<<40, 0)) {
			t.Fatalf("expiry %v out of range", exp)
		}
		if len(token) > maxLen || strings.Count(token, ".") != 2 {
			t.Fatalf("read an expiry from a token that is not a compact JWS")
		}
	})
}

// FuzzExpiryClaim builds JWTs around an arbitrary exp claim: a whole
// number of seconds in range, written as JSON writes it, must come back
// exactly; anything else must not panic.
func FuzzExpiryClaim(f *testing.F) {
	f.Fuzz(func(t *testing.T, claim string) {
		token := testkit.JWT(`{"exp":` + claim + `}`)
		exp, ok := Expiry(token)
		c := strings.Trim(claim, " \t\r\n") // JSON whitespace only
		n, err := strconv.ParseInt(c, 10, 64)
		canonical := err == nil && strconv.FormatInt(n, 10) == c // JSON has no leading zeros or plus signs
		if canonical && n > 0 && n <= 1<<40 && (!ok || exp.Unix() != n || exp.Nanosecond() != 0) {
			t.Fatalf("exp %d read as %v, %v", n, exp, ok)
		}
	})
}
