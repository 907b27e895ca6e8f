package exchange

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

// answer serves body with the given Date header from a real server and
// returns what readResponse makes of it at now.
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
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readResponse(resp, 64<<10, now, func(int) string { return "" })
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
