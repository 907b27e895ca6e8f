package exchange

import (
	"errors"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

func TestParseBody(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		body    string
		token   string
		expiry  time.Time
		source  string
		wantErr error
	}{
		{name: "opaque", body: `{"token":"opaque-123"}` + "\n", token: "opaque-123"},
		{name: "unknown fields ignored", body: `{"token":"t0ken","extra":{"a":1}}`, token: "t0ken"},
		{name: "service_token", body: `{"service_token":"svc"}`, token: "svc"},
		{name: "token wins over service_token", body: `{"token":"a","service_token":"b"}`, token: "a"},
		{name: "expires_at seconds", body: `{"token":"x","expires_at":1800000600}`, token: "x", expiry: time.Unix(1_800_000_600, 0), source: "expires_at"},
		{name: "expires_at string seconds", body: `{"token":"x","expires_at":"1800000600"}`, token: "x", expiry: time.Unix(1_800_000_600, 0), source: "expires_at"},
		{name: "expires_at rfc3339", body: `{"token":"x","expires_at":"2027-01-16T08:00:00Z"}`, token: "x", expiry: time.Date(2027, 1, 16, 8, 0, 0, 0, time.UTC), source: "expires_at"},
		{name: "expires_at wins over jwt", body: `{"token":"` + testkit.JWT(`{"exp":1800000900}`) + `","expires_at":1800000600}`, token: testkit.JWT(`{"exp":1800000900}`), expiry: time.Unix(1_800_000_600, 0), source: "expires_at"},
		{name: "jwt exp", body: `{"token":"` + testkit.JWT(`{"exp":1800000900}`) + `"}`, token: testkit.JWT(`{"exp":1800000900}`), expiry: time.Unix(1_800_000_900, 0), source: "jwt"},
		{name: "jwt without exp is opaque", body: `{"token":"` + testkit.JWT(`{"sub":"x"}`) + `"}`, token: testkit.JWT(`{"sub":"x"}`)},
		{name: "null expires_at", body: `{"token":"x","expires_at":null}`, token: "x"},
		{name: "expired jwt", body: `{"token":"` + testkit.JWT(`{"exp":1700000000}`) + `"}`, wantErr: ErrExpired},
		{name: "expired expires_at", body: `{"token":"x","expires_at":1800000000}`, wantErr: ErrExpired},
		{name: "bad expires_at", body: `{"token":"x","expires_at":true}`, wantErr: ErrInvalidResponse},
		{name: "not json", body: `token=x`, wantErr: ErrInvalidResponse},
		{name: "array", body: `["x"]`, wantErr: ErrInvalidResponse},
		{name: "token number", body: `{"token":42}`, wantErr: ErrInvalidResponse},
		{name: "missing", body: `{}`, wantErr: ErrInvalidResponse},
		{name: "empty", body: `{"token":""}`, wantErr: ErrInvalidResponse},
		{name: "space", body: `{"token":"a b"}`, wantErr: ErrInvalidResponse},
		{name: "tab", body: `{"token":"a\tb"}`, wantErr: ErrInvalidResponse},
		{name: "newline", body: `{"token":"ab\n"}`, wantErr: ErrInvalidResponse},
		{name: "NUL", body: `{"token":"a\u0000b"}`, wantErr: ErrInvalidResponse},
		{name: "DEL", body: `{"token":"a\u007fb"}`, wantErr: ErrInvalidResponse},
		{name: "non-ASCII", body: `{"token":"tökén"}`, wantErr: ErrInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := parseBody([]byte(tt.body), now, "")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if tok.Value.Reveal() != tt.token || !tok.Expiry.Equal(tt.expiry) || tok.ExpirySource != tt.source {
				t.Errorf("got (%s, %v, %q), want (%s, %v, %q)", tok.Value.Fingerprint(), tok.Expiry, tok.ExpirySource, tt.token, tt.expiry, tt.source)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0":                             0,
		"-5":                            0,
		"3.5":                           0,
		"soon":                          0,
		"Sat, 28 Nov 2026 12:01:00 GMT": time.Minute,
		"Sat, 28 Nov 2026 11:00:00 GMT": 0,
		"999999999":                     24 * time.Hour,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
