package daemon

import (
	"time"

	"github.com/ambient-code/tokend/internal/health"
	"github.com/ambient-code/tokend/internal/jwtexp"
	"github.com/ambient-code/tokend/internal/secret"
)

// tokenExpiry returns the expiry of the token on disk: from the running
// daemon's status when that describes this token (on this node's clock,
// and known for opaque tokens too), else from its JWT exp claim.
func tokenExpiry(token string, st health.Status, stErr error) (time.Time, string) {
	if stErr == nil && st.Fingerprint == secret.Fingerprint(token) && !st.Expiry.IsZero() {
		return st.Expiry, "tokend run"
	}
	if exp, ok := jwtexp.Expiry(token); ok {
		return exp, "jwt exp"
	}
	return time.Time{}, ""
}
