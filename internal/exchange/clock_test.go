package exchange

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// answer serves body with the given Date header from a real server and
// returns what get makes of it at now.
func answer(t *testing.T, date, body string, now time.Time) (Token, error) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // net/http's own Date suppressed
		if date != "" {
			w.Header()["Date"] = []string{date}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, body)
	}))
	defer srv.Close()
	return get(t.Context(), srv.Client(), srv.URL, "a-credential", now, func(int) string { return "" })
}

// TestIssuerClockSkew: an issuer five minutes behind tokend that mints
// two-minute tokens (its Date, exp and expires_at agree) has its tokens
// accepted with two minutes to live on tokend's clock, and the skew is
// reported; a Date within MinSkew changes nothing; without Date, the expiry
// is taken as given.
func TestIssuerClockSkew(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	issuer := now.Add(-5 * time.Minute)
	exp := issuer.Add(2 * time.Minute)
	tests := []struct {
		name, date, body string
		wantExpiry       time.Time
		wantSkew         time.Duration
		wantErr          error
	}{
		{"behind, expires_at", issuer.Format(http.TimeFormat), fmt.Sprintf(`{"token":"t","expires_at":%d}`, exp.Unix()), now.Add(2 * time.Minute), -5 * time.Minute, nil},
		{"behind, jwt", issuer.Format(http.TimeFormat), fmt.Sprintf(`{"token":%q}`, testkit.JWT(fmt.Sprintf(`{"exp":%d}`, exp.Unix()))), now.Add(2 * time.Minute), -5 * time.Minute, nil},
		{"ahead", now.Add(time.Hour).Format(http.TimeFormat), fmt.Sprintf(`{"token":"t","expires_at":%d}`, now.Add(time.Hour+2*time.Minute).Unix()), now.Add(2 * time.Minute), time.Hour, nil},
		{"within a second", now.Add(time.Second).Format(http.TimeFormat), fmt.Sprintf(`{"token":"t","expires_at":%d}`, now.Add(2*time.Minute).Unix()), now.Add(2 * time.Minute), 0, nil},
		{"no Date header", "", fmt.Sprintf(`{"token":"t","expires_at":%d}`, exp.Unix()), time.Time{}, 0, ErrExpired},
		{"unparseable Date", "yesterday", fmt.Sprintf(`{"token":"t","expires_at":%d}`, now.Add(time.Minute).Unix()), now.Add(time.Minute), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := answer(t, tt.date, tt.body, now)
			if tt.wantErr != nil {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr.Error()) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tt.wantExpiry) || tok.Skew != tt.wantSkew {
				t.Errorf("expiry %s skew %v, want %s and %v", tok.Expiry, tok.Skew, tt.wantExpiry, tt.wantSkew)
			}
		})
	}
}

// TestExpiryOutOfRangeIsUnknown: an expiry past the year 9999 or more than
// a year away, from expires_at or a JWT's exp, leaves the token good with
// its expiry unknown, and says why.
func TestExpiryOutOfRangeIsUnknown(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for name, body := range map[string]string{
		"expires_at 999999999999":   `{"token":"t","expires_at":999999999999}`,
		"expires_at year 9999":      `{"token":"t","expires_at":"9999-12-31T23:59:59Z"}`,
		"jwt exp 999999999999":      fmt.Sprintf(`{"token":%q}`, testkit.JWT(`{"exp":999999999999}`)),
		"expires_at in three years": fmt.Sprintf(`{"token":"t","expires_at":%d}`, now.AddDate(3, 0, 0).Unix()),
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := answer(t, "", body, now)
			if err != nil {
				t.Fatalf("a good token was refused: %v", err)
			}
			if !tok.Expiry.IsZero() || tok.ExpirySource != "" || tok.IgnoredExpiry == "" {
				t.Errorf("expiry %s (%q), ignored %q; want unknown, with a reason", tok.Expiry, tok.ExpirySource, tok.IgnoredExpiry)
			}
		})
	}
}

// TestExpiryPastYear9999AsUnixSeconds (issue 20, section 6): an expires_at
// past the year 9999 written as an RFC 3339 string with a longer year (as
// Go's Format, JavaScript's toISOString and Java's Instant write it) is
// judged exactly as the same instant in Unix seconds: accepted with its
// expiry unknown up to 2^40 s (the year 36812), refused beyond, where Unix
// seconds are refused too. A malformed long year stays refused.
func TestExpiryPastYear9999AsUnixSeconds(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rfc3339 string
		unix    string
		refused bool
	}{
		{rfc3339: "10000-01-01T00:00:00Z", unix: "253402300800"},
		{rfc3339: "+010000-01-01T00:00:00.000Z", unix: "253402300800"},
		{rfc3339: "+10000-01-01T02:00:00+02:00", unix: "253402300800"},
		{rfc3339: "10000-02-29T12:00:00.5+02:00", unix: "253407434400.5"},
		{rfc3339: "36813-01-01T00:00:00Z", unix: "1099538928000", refused: true},
		{rfc3339: "99999-12-31T00:00:00Z", unix: "3093527894400", refused: true},
	} {
		t.Run(tc.rfc3339, func(t *testing.T) {
			str, strErr := answer(t, "", `{"token":"t","expires_at":"`+tc.rfc3339+`"}`, now)
			num, numErr := answer(t, "", `{"token":"t","expires_at":`+tc.unix+`}`, now)
			if tc.refused {
				if !errors.Is(strErr, ErrInvalidResponse) || !errors.Is(numErr, ErrInvalidResponse) {
					t.Fatalf("refusals %v and %v, want both ErrInvalidResponse", strErr, numErr)
				}
				return
			}
			if strErr != nil || numErr != nil {
				t.Fatalf("RFC 3339: %v; Unix seconds: %v; want both accepted", strErr, numErr)
			}
			if str.IgnoredExpiry == "" || str.IgnoredExpiry != num.IgnoredExpiry || !str.Expiry.IsZero() || str.ExpirySource != "" {
				t.Errorf("RFC 3339: expiry %v (%q), ignored %q; Unix seconds: ignored %q; want both unknown, for the same reason",
					str.Expiry, str.ExpirySource, str.IgnoredExpiry, num.IgnoredExpiry)
			}
		})
	}
	for _, bad := range []string{"10000-02-30T00:00:00Z", "10001-02-29T00:00:00Z", "10000-01-01", "-10000-01-01T00:00:00Z", "1e5-01-01T00:00:00Z", "10000-01-01T00:00:00"} {
		if _, err := answer(t, "", `{"token":"t","expires_at":"`+bad+`"}`, now); !errors.Is(err, ErrInvalidResponse) {
			t.Errorf("expires_at %q: %v, want ErrInvalidResponse", bad, err)
		}
	}
}
