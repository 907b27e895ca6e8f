package exchange

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// FuzzParsePublicKey feeds ParsePublicKey arbitrary text. It must not
// panic; a key it accepts is RSA of at least MinKeyBits; the base64 form of
// a raw PEM parses to the same result; and an error never quotes the key
// material.
func FuzzParsePublicKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParsePublicKey(s)
		if err == nil {
			if key == nil || key.N.BitLen() < MinKeyBits {
				t.Fatalf("accepted a key of %d bits", key.N.BitLen())
			}
		} else {
			assertNoKeyMaterial(t, s, err.Error())
		}
		if !strings.HasPrefix(strings.TrimSpace(s), "-----") {
			return
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
			key2, err2 := ParsePublicKey(enc.EncodeToString([]byte(s)))
			if (err == nil) != (err2 == nil) {
				t.Fatalf("raw PEM: %v; its base64: %v", err, err2)
			}
			if err == nil && (key.N.Cmp(key2.N) != 0 || key.E != key2.E) {
				t.Fatalf("raw PEM and its base64 give different keys")
			}
		}
	})
}

// assertNoKeyMaterial fails when msg holds a line of a PEM body in s.
func assertNoKeyMaterial(t *testing.T, s, msg string) {
	t.Helper()
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return
		}
		body := base64.StdEncoding.EncodeToString(block.Bytes)
		for len(body) >= 16 {
			if strings.Contains(msg, body[:16]) {
				t.Fatalf("error quotes key material: %q", msg)
			}
			body = body[16:]
		}
	}
}

// FuzzParseBody feeds the response parser arbitrary bodies. It must not
// panic; every failure is an invalid response or an expired token; a token
// it accepts is the JSON's token, usable as a bearer token, and not
// expired; and an error never quotes the token.
func FuzzParseBody(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := parseBody(body, now, "")
		var r struct {
			Token        *string `json:"token"`
			ServiceToken *string `json:"service_token"`
		}
		decoded := json.Unmarshal(body, &r) == nil
		want := ""
		switch {
		case !decoded:
		case r.Token != nil:
			want = *r.Token
		case r.ServiceToken != nil:
			want = *r.ServiceToken
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) && !errors.Is(err, ErrExpired) {
				t.Fatalf("error is neither ErrInvalidResponse nor ErrExpired: %v", err)
			}
			if !Retryable(err) {
				t.Fatalf("a bad 200 answer is classified permanent: %v", err)
			}
			if errors.Is(err, ErrExpired) && !judgedRE.MatchString(err.Error()) {
				t.Fatalf("judged expired by an expiry outside the accepted range: %v", err)
			}
			if len(want) >= 6 && strings.Contains(err.Error(), want) {
				t.Fatalf("error quotes the token: %q", err)
			}
			return
		}
		if !decoded || tok.Value.Reveal() != want {
			t.Fatalf("accepted token differs from the body's token field")
		}
		if tokenbytes.Check(tok.Value.Reveal()) != nil {
			t.Fatalf("accepted a token that tokenbytes.Check rejects")
		}
		if !tok.Expiry.IsZero() && !tok.Expiry.After(now) {
			t.Fatalf("accepted a token that expired at %v", tok.Expiry)
		}
		if tok.Expiry.IsZero() != (tok.ExpirySource == "") {
			t.Fatalf("expiry %v from source %q", tok.Expiry, tok.ExpirySource)
		}
		if bytes.Contains([]byte(tok.Value.String()+tok.ExpirySource), []byte(want)) && len(want) >= 6 {
			t.Fatalf("token shows through its String")
		}
	})
}

// judgedRE matches an ErrExpired message whose expiry lies in the range
// the parser accepts: after the epoch and at most 2^40 s (year 36812).
var judgedRE = regexp.MustCompile(`\(expiry \d{4,5}-\d\d-\d\dT`)

// FuzzParseRetryAfter: any Retry-After value gives a delay in [0, 24h].
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}
