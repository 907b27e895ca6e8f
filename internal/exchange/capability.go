package exchange

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ambient-code/tokend/internal/jwtexp"
)

// ErrCredentialExpired is wrapped by the error of a bearer exchange that
// failed after the credential's own exp claim had passed: the successor
// control plane refuses an expired capability (401), and a new run gets a
// new one. The issuer's answer rules while it gives one (a 200 is a
// success, whatever tokend's clock says); when it is out of reach, the
// claim alone ends the credential. Classify calls it a refusal.
var ErrCredentialExpired = errors.New("exchange: the bearer credential has expired")

// CapabilityPrefix starts the successor control plane's run capability:
// "acp-runner-v1.<base64url JSON claims>.<base64url signature>"
// (protocol.md section 3).
const CapabilityPrefix = "acp-runner-v1."

// CredentialExpiry returns the exp claim of a bearer credential: the
// successor's run capability, or any JWT. The signature is not verified
// (tokend holds no key to verify it, and needs only the expiry); ok is
// false for a credential without a readable exp claim. Safe for concurrent
// use; it never returns credential bytes.
func CredentialExpiry(credential string) (exp time.Time, ok bool) {
	// A capability has a JWT's shape, its first segment a version
	// label instead of a header; jwtexp reads the second segment only.
	if strings.HasPrefix(credential, CapabilityPrefix) || strings.Count(credential, ".") == 2 {
		return jwtexp.Expiry(credential)
	}
	return time.Time{}, false
}

// credentialExpired returns an error wrapping ErrCredentialExpired and
// cause, the exchange's failure, when exp (a credential's expiry) is not
// after now; nil otherwise. source names the credential's setting.
func credentialExpired(exp, now time.Time, source string, cause error) error {
	if exp.IsZero() || now.Before(exp) {
		return nil
	}
	return fmt.Errorf("%w at %s (its exp claim): a new run gets a new one, or replace %s (the last answer: %w)",
		ErrCredentialExpired, exp.UTC().Format(time.RFC3339), source, cause)
}
