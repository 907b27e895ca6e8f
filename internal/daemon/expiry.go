package daemon

import (
	"time"

	"github.com/ambient-code/tokend/internal/jwtexp"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/status"
)

// tokenExpiry returns the expiry of the token on disk: from the status
// record when it describes this token, else from the token's JWT exp claim.
func tokenExpiry(token string, rec status.Record, recErr error) (time.Time, string) {
	if recErr == nil && rec.Fingerprint == secret.Fingerprint(token) && !rec.Expiry.IsZero() {
		return rec.Expiry, "status record"
	}
	if exp, ok := jwtexp.Expiry(token); ok {
		return exp, "jwt exp"
	}
	return time.Time{}, ""
}
