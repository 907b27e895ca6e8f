// Package secret keeps secret strings out of logs, errors and panics.
//
// A String prints and logs as "[REDACTED]" whichever way it is formatted;
// Reveal is the one deliberate way to the value. Fingerprint gives a short,
// stable, non-reversible name for a secret so that logs can say which token
// changed without saying what it is.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// String is a secret value. Its zero value is the empty secret. It is an
// immutable value type, safe to copy and to share between goroutines.
type String struct {
	v string
}

// New wraps v as a secret.
func New(v string) String { return String{v: v} }

// Reveal returns the secret value. Call it only where the value must leave
// the process: an HTTP header, the token file.
func (s String) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.v == "" }

// Equal reports whether s and t hold the same value.
func (s String) Equal(t String) bool { return s.v == t.v }

// String returns a redaction marker, never the value.
func (s String) String() string { return redacted }

// Format makes every fmt verb, %#v included, print the redaction marker.
func (s String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer: a logged String is redacted.
func (s String) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText makes encoders that honour encoding.TextMarshaler (JSON among
// them) write the redaction marker.
func (s String) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Fingerprint returns the first 12 hex digits of the SHA-256 of the value:
// enough to tell tokens apart in logs, too little to recover or forge one.
// The empty secret's fingerprint is "none".
func (s String) Fingerprint() string { return Fingerprint(s.v) }

// Fingerprint returns the short fingerprint of v; see String.Fingerprint.
func Fingerprint(v string) string {
	if v == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:6])
}
