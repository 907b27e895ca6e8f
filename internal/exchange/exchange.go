// Package exchange obtains API tokens from the control plane's token endpoint.
//
// An Exchanger performs one exchange: one credential sent, one token back.
// EncryptedSession speaks the deployed protocol, Bearer the successor's
// (a run-scoped capability). An Exchanger never schedules anything: the
// caller decides when to call again, reading an error with Classify and
// RetryAfter. A Token it returns is validated, fit to be written out.
//
// Errors never contain the token, the session id, the bearer credential,
// or key material.
package exchange

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// Token is a validated API token as issued by the control plane.
type Token struct {
	// Value is the bearer token: non-empty, printable ASCII, no whitespace.
	Value secret.String
	// Expiry is when the token stops being valid; zero when unknown.
	Expiry time.Time
	// ExpirySource says where Expiry came from: "expires_at" (the response
	// field), "jwt" (the token's exp claim) or "" (unknown).
	ExpirySource string
	// Skew is how far the issuer's clock (its Date header) was ahead of
	// tokend's; negative when behind, zero when unknown or within MinSkew.
	// Expiry is already on tokend's clock.
	Skew time.Duration
	// IgnoredExpiry, when not empty, says why an expiry the issuer gave was
	// out of range and treated as unknown.
	IgnoredExpiry string
	// CredentialExpiry is when the credential that obtained the token
	// stops being accepted, from its exp claim (on tokend's clock); zero
	// when unknown. No token is issued past it.
	CredentialExpiry time.Time
}

// Exchanger performs one token exchange. Implementations are safe for
// concurrent use.
type Exchanger interface {
	// Exchange obtains one token. It returns a *StatusError for an HTTP
	// answer other than 200, an error wrapping ErrInvalidResponse for a 200
	// that does not carry a usable token, ErrExpired for a token that is
	// already expired, and a transport or context error otherwise.
	Exchange(ctx context.Context) (Token, error)
}

// ErrInvalidResponse is wrapped by errors about a 200 answer that does not
// hold a usable token: not JSON, no token field, an empty token, a token with
// whitespace or control characters, or a body over the size limit.
var ErrInvalidResponse = errors.New("exchange: invalid response")

// ErrExpired is returned when the issued token has already expired on
// arrival (by its expires_at field or JWT exp claim).
var ErrExpired = errors.New("exchange: issued token is already expired")

// StatusError reports an HTTP answer other than 200 from the token endpoint.
// Its message names the status and what it means; it never includes the
// response body, which tokend does not control.
type StatusError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RetryAfter is the delay the server asked for with Retry-After; zero
	// when absent or unparseable.
	RetryAfter time.Duration
	// Hint explains the status in terms of tokend's configuration.
	Hint string
	// Confirmed reports that a 401 answered the freshest credential: one
	// re-read after the 401 and found unchanged, or from a source that
	// cannot change. Classify calls a confirmed 401 a refusal.
	Confirmed bool
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("exchange: token endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// Class is what a failed exchange means for the token tokend holds: it
// stays in use until it expires, unless the class is Refused.
type Class int

// The classes of Classify.
const (
	None      Class = iota // err is nil
	Transient              // the issuer is busy, failing or out of reach: asking again soon may succeed
	Permanent              // a configuration problem or the caller stopping: the same request fails again
	Refused                // the credential was definitively refused (revoked, expired): stop using the token now
)

// Classify says what the failure err means; it is the one place where
// failures are classified, and what the README documents per mode:
//
//   - Refused: 403 (the session id rejected, or "runner access revoked");
//     a confirmed 401 (StatusError.Confirmed); ErrCredentialExpired.
//   - Permanent: every other 3xx or 4xx status, an unconfirmed 401
//     included (the same request fails again); a server certificate that
//     does not verify (the trusted roots are read once); a cancelled
//     context (the caller is stopping).
//   - Transient: 408, 429 and 5xx; an invalid 200 answer or an
//     already-expired token (a proxy's page, a passing glitch);
//     ErrCredential and ErrPublicKey (a mounted file may be late); the
//     exchange's deadline; anything else (connection refused, reset, DNS).
func Classify(err error) Class {
	var se *StatusError
	var ce *tls.CertificateVerificationError
	switch {
	case err == nil:
		return None
	case errors.Is(err, ErrCredentialExpired):
		return Refused
	case errors.Is(err, context.Canceled), errors.As(err, &ce):
		return Permanent
	case errors.As(err, &se):
		switch c := se.StatusCode; {
		case c == http.StatusForbidden, c == http.StatusUnauthorized && se.Confirmed:
			return Refused
		case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
			return Transient
		}
		return Permanent
	}
	return Transient
}

// Retryable reports whether an exchange that failed with err may succeed
// if tried again soon: Classify(err) == Transient.
func Retryable(err error) bool { return Classify(err) == Transient }

// Reason returns err as one line without the "exchange: " prefix, for the
// withdrawal record and the proxy's answers. It holds no secret.
func Reason(err error) string {
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "exchange: "), "\n", "; ")
}

// RetryAfter returns the delay the server asked for, if err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter, true
	}
	return 0, false
}

// StatusCode returns the HTTP status carried by err, or 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date,
// relative to now, at most a day; absent, negative or unparseable: zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(secs, 10) == v {
		d = time.Duration(min(max(secs, 0), 24*3600)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = min(t.Sub(now), 24*time.Hour)
	}
	return max(d, 0)
}

// cause drops err's outer wrapper, at every call a *url.Error or
// *fs.PathError, whose message repeats the method, URL (with a query
// string, which must not reach logs) or path that the caller states.
func cause(err error) error { return cmp.Or(errors.Unwrap(err), err) }

// SafeURL returns raw's scheme, host and path, for logs and errors: a
// gateway may carry a credential in the query string or user info.
func SafeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the token URL"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
