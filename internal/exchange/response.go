package exchange

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ambient-code/tokend/internal/jwtexp"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
	"github.com/ambient-code/tokend/internal/version"
)

// userAgent is the User-Agent header of every exchange: tokend/<version>.
var userAgent = "tokend/" + version.Get().Version

// get sends the GET of both modes (the credential in "Authorization:
// Bearer", no body, no redirect followed) and validates the answer into a
// Token. A body past bodyLimit is an error; hint explains non-200 statuses;
// an unknown CA's error names the CA settings.
func get(ctx context.Context, client *http.Client, endpoint, credential string, now time.Time, hint func(int) string) (Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return Token{}, fmt.Errorf("exchange: building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	c := *client
	c.CheckRedirect = noRedirect
	resp, err := c.Do(req)
	if err != nil {
		hint := ""
		if errors.As(err, new(x509.UnknownAuthorityError)) {
			hint = "; the server's certificate is signed by a CA tokend does not trust: " +
				"give tokend that CA's PEM certificate (the control plane's, a proxy's or a company's; several in one bundle) " +
				"with --ca-file (TOKEND_CA_FILE) or --cp-ca-file (AMBIENT_CP_CA_PATH), one setting also read from AMBIENT_CP_CA_CERT_FILE"
		}
		return Token{}, fmt.Errorf("exchange: GET %s: %w%s", SafeURL(endpoint), cause(err), hint)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused, then give up on it.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return Token{}, &StatusError{
			StatusCode: resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now),
			Hint:       hint(resp.StatusCode),
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit+1))
	if err != nil {
		return Token{}, fmt.Errorf("exchange: reading response body: %w", err)
	}
	if len(body) > bodyLimit {
		return Token{}, fmt.Errorf("%w: body exceeds %d bytes", ErrInvalidResponse, bodyLimit)
	}
	return parseBody(body, now, resp.Header.Get("Date"))
}

// bodyLimit bounds the response body of either mode.
const bodyLimit = 64 << 10

// MinSkew is the least difference between the issuer's clock and tokend's
// that is corrected for: the Date header has whole seconds, and the answer
// takes time to arrive.
const MinSkew = 2 * time.Second

// maxLife is the longest remaining life taken at its word: an expiry
// further out, or past the year 9999, is unknown, never a reason to refuse
// a token.
const maxLife = 366 * 24 * time.Hour

// parseBody decodes a token response body: "token" (or "service_token")
// and an optional "expires_at", Unix seconds (number or string) or RFC 3339
// (a year past 9999 too), else a JWT's exp; other fields are ignored. The
// issuer's clock is date (a Date header): when it is MinSkew or more from
// now, the difference is the token's Skew and is taken off the expiry.
func parseBody(body []byte, now time.Time, date string) (Token, error) {
	var r struct {
		Token        *string         `json:"token"`
		ServiceToken *string         `json:"service_token"`
		ExpiresAt    json.RawMessage `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Token{}, fmt.Errorf("%w: not a JSON object with a string token field", ErrInvalidResponse)
	}
	token := cmp.Or(r.Token, r.ServiceToken)
	if token == nil {
		return Token{}, fmt.Errorf("%w: no token field", ErrInvalidResponse)
	}
	value := *token
	// The token's bytes by package tokenbytes' rule; the error names an
	// offset, never the value.
	switch err := tokenbytes.Check(value); {
	case errors.Is(err, tokenbytes.ErrEmpty):
		return Token{}, fmt.Errorf("%w: empty token", ErrInvalidResponse)
	case errors.Is(err, tokenbytes.ErrTooLong):
		return Token{}, fmt.Errorf("%w: token %w", ErrInvalidResponse, err)
	case err != nil:
		return Token{}, fmt.Errorf("%w: token has %w", ErrInvalidResponse, err)
	}
	tok := Token{Value: secret.New(value)}
	if len(r.ExpiresAt) > 0 && string(r.ExpiresAt) != "null" {
		exp, err := parseExpiresAt(r.ExpiresAt)
		if err != nil {
			return Token{}, err
		}
		tok.Expiry, tok.ExpirySource = exp, "expires_at"
	} else if exp, ok := jwtexp.Expiry(value); ok {
		tok.Expiry, tok.ExpirySource = exp, "jwt"
	}
	if !tok.Expiry.IsZero() {
		if t, err := http.ParseTime(date); err == nil && t.Sub(now).Abs() >= MinSkew {
			tok.Skew = t.Sub(now)
		}
		if tok.Expiry.Year() > 9999 || tok.Expiry.Sub(now.Add(tok.Skew)) > maxLife {
			tok.IgnoredExpiry = fmt.Sprintf("%s of %d (Unix seconds) is more than a year away", tok.ExpirySource, tok.Expiry.Unix())
			tok.Expiry, tok.ExpirySource = time.Time{}, ""
		} else {
			tok.Expiry = tok.Expiry.Add(-tok.Skew)
		}
	}
	if !tok.Expiry.IsZero() && !tok.Expiry.After(now) {
		return Token{}, fmt.Errorf("%w (expiry %s from %s, now %s)", ErrExpired,
			tok.Expiry.Format(time.RFC3339), tok.ExpirySource, now.UTC().Format(time.RFC3339))
	}
	return tok, nil
}

// maxExpiresAt is the latest expires_at accepted, in Unix seconds (in the
// year 36812); a later one is a malformed answer.
const maxExpiresAt = 1 << 40

func parseExpiresAt(raw json.RawMessage) (time.Time, error) {
	bad := fmt.Errorf("%w: expires_at is neither Unix seconds nor RFC 3339", ErrInvalidResponse)
	s := string(raw)
	if raw[0] == '"' && json.Unmarshal(raw, &s) != nil {
		return time.Time{}, bad
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, ok := parseLongYear(s); ok && t.Unix() > 0 && t.Unix() <= maxExpiresAt {
		return t, nil
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	// Written so that NaN, which fails every comparison, is refused too.
	if err != nil || !(secs > 0 && secs <= maxExpiresAt) {
		return time.Time{}, bad
	}
	return time.Unix(int64(secs), int64((secs-float64(int64(secs)))*1e9)).UTC(), nil
}

// parseLongYear parses an RFC 3339 time with a five- to nine-digit year,
// maybe after '+' (as Go, JavaScript and Java write years past 9999), which
// time.Parse refuses; the rest is checked in a four-digit year as leap.
func parseLongYear(s string) (time.Time, bool) {
	digits, rest, ok := strings.Cut(strings.TrimPrefix(s, "+"), "-")
	year, err := strconv.ParseUint(digits, 10, 32) // no sign, no overflow
	if !ok || err != nil || len(digits) < 5 || len(digits) > 9 {
		return time.Time{}, false
	}
	stand := 2001 // a four-digit year with as many days
	if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		stand = 2000
	}
	t, err := time.Parse(time.RFC3339Nano, strconv.Itoa(stand)+"-"+rest)
	if err != nil {
		return time.Time{}, false
	}
	// Same leap-ness: in UTC too, no date moves to or from a 29 February.
	return t.UTC().AddDate(int(year)-stand, 0, 0), true
}
