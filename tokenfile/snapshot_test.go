package tokenfile

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambient-code/tokend/test/testkit"
)

func TestParseToken(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"plain", "abc.DEF-123_~", "abc.DEF-123_~", nil},
		{"one trailing newline", "abc\n", "abc", nil},
		{"empty", "", "", ErrEmpty},
		{"newline only", "\n", "", ErrEmpty},
		{"two trailing newlines", "abc\n\n", "abc", nil},
		{"newline inside", "zqx\nvw\n", "", ErrInvalid},
		{"carriage return", "zqxvw\r\n", "", ErrInvalid},
		{"leading space", " zqxvw", "", ErrInvalid},
		{"inner tab", "zqx\tvw", "", ErrInvalid},
		{"NUL", "zqx\x00vw", "", ErrInvalid},
		{"DEL", "zqx\x7fvw", "", ErrInvalid},
		{"non-ASCII", "zqxvwé", "", ErrInvalid},
		{"longest", strings.Repeat("a", MaxTokenLen), strings.Repeat("a", MaxTokenLen), nil},
		{"too long", strings.Repeat("a", MaxTokenLen+1), "", ErrInvalid},
		{"too long with its newline", strings.Repeat("a", MaxTokenLen) + "\n", "", ErrInvalid},
		{"only newlines", "\n\n\n", "", ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseToken([]byte(tt.in))
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("parseToken: got %d bytes, err %v; want %d bytes, err %v", len(got), err, len(tt.want), tt.err)
			}
			if err != nil && len(tt.in) > 4 && strings.Contains(err.Error(), tt.in[1:4]) {
				t.Fatal("the error shows the content")
			}
		})
	}
}

func TestSnapshotExpiry(t *testing.T) {
	loaded := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	exp := time.Unix(1795900000, 0).UTC()
	tests := []struct {
		name       string
		token      string
		wantExpiry time.Time
		expiredAt  map[time.Time]bool
	}{
		{"jwt with exp", testkit.JWT(`{"exp":1795900000}`), exp, map[time.Time]bool{
			exp.Add(-time.Second): false, exp: true, exp.Add(time.Second): true,
		}},
		{"jwt without exp", testkit.JWT(`{"sub":"x"}`), time.Time{}, map[time.Time]bool{exp: false}},
		{"opaque", "opaque-token", time.Time{}, map[time.Time]bool{exp.Add(1e6 * time.Hour): false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeRename(t, path, tt.token)
			w, err := New(path, WithClock(func() time.Time { return loaded }))
			must(t, err)
			s := w.reload("")
			if !s.Expiry.Equal(tt.wantExpiry) || !s.LoadedAt.Equal(loaded) || s.Err != nil {
				t.Fatalf("snapshot %v, want expiry %v loaded %v", s, tt.wantExpiry, loaded)
			}
			for now, want := range tt.expiredAt {
				if got := s.Expired(now); got != want {
					t.Errorf("Expired(%v) = %v, want %v", now, got, want)
				}
			}
		})
	}
}

// TestSnapshotRedacts formats and logs a Snapshot every way and checks the
// token never shows.
func TestSnapshotRedacts(t *testing.T) {
	tok := testkit.JWT(`{"exp":1795900000}`)
	s := Snapshot{Token: tok, Expiry: time.Unix(1795900000, 0), LoadedAt: time.Now(), Err: ErrMissing}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s))
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "snap", s)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "snap", s)
	outs = append(outs, buf.String())
	for i, out := range outs {
		if strings.Contains(out, tok) || strings.Contains(out, tok[10:30]) {
			t.Fatalf("the token shows in output %d", i)
		}
		if !strings.Contains(out, s.Fingerprint()) {
			t.Errorf("the fingerprint is missing from %q", out)
		}
	}
}
