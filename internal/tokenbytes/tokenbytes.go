// Package tokenbytes is the one rule for the bytes of a bearer token: the
// exchange's answer, the token file (tokend check, package tokenfile) and
// the bearer credential tokend sends.
//
// A token is 1 to MaxLen bytes of printable ASCII, 0x21 to 0x7E (no
// whitespace, control or non-ASCII byte), so that a reader that pastes it
// into an HTTP header cannot be made to inject another. A file may follow
// the token with line feeds (FromFile); a token never holds one (Check).
//
// A writer whose credential the issuer definitively refused puts a
// withdrawal record (Withdrawal) in place of the token: one line starting
// "# token withdrawn" that says why. It breaks the token rule, so a reader
// of the rule alone sees no token, while FromFile returns ErrWithdrawn and
// so tells a withdrawal from a file gone bad (where the last good token is
// kept).
//
// Errors name the problem and a byte offset, never the bytes. The functions
// are pure and safe for concurrent use.
package tokenbytes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxLen is the most bytes a token may have, and a token file in all (the
// token and its line feeds). Real tokens are a few KiB at most.
const MaxLen = 16 << 10

var (
	// ErrEmpty is returned for a token of no bytes (or a file of line
	// feeds only).
	ErrEmpty = errors.New("empty")
	// ErrTooLong is returned for more than MaxLen bytes.
	ErrTooLong = errors.New("longer than " + strconv.Itoa(MaxLen) + " bytes")
	// ErrByte is wrapped by the error for a byte a token may not hold,
	// which ends "at offset N", N counted from 0.
	ErrByte = errors.New("a whitespace, control or non-ASCII byte")
	// ErrWithdrawn is returned by FromFile for a withdrawal record; the
	// wrapping error carries the record's reason.
	ErrWithdrawn = errors.New("token withdrawn")
)

// withdrawnPrefix starts every withdrawal record.
const withdrawnPrefix = "# token withdrawn"

// maxReason bounds the reason a withdrawal record carries, in bytes.
const maxReason = 200

// Withdrawal returns the withdrawal record for reason: one line,
// "# token withdrawn: <reason>\n". The reason must not hold a secret; bytes
// outside printable ASCII and space become '?', and it is cut to 200 bytes.
func Withdrawal(reason string) []byte {
	return []byte(withdrawnPrefix + ": " + clean(reason) + "\n")
}

// clean makes s one line of printable ASCII, at most maxReason bytes.
func clean(s string) string {
	b := []byte(s[:min(len(s), maxReason)])
	for i, c := range b {
		if c < ' ' || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

// Check returns nil when v is a token by the package rule: ErrEmpty,
// ErrTooLong or an error wrapping ErrByte otherwise. A trailing line feed
// is a bad byte: use FromFile for a file's content.
func Check(v string) error {
	switch {
	case len(v) == 0:
		return ErrEmpty
	case len(v) > MaxLen:
		return ErrTooLong
	}
	// A non-ASCII or invalid byte starts a rune of at least 0x80.
	if i := strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
		return fmt.Errorf("%w at offset %d", ErrByte, i)
	}
	return nil
}

// FromFile returns the token in a file's content b: the token, then
// optionally line feeds, which are dropped, at most MaxLen bytes in all.
// Its errors are Check's, and an error wrapping ErrWithdrawn, with the
// record's reason, for a withdrawal record.
func FromFile(b []byte) (string, error) {
	if len(b) > MaxLen {
		return "", ErrTooLong
	}
	if rest, ok := strings.CutPrefix(string(b), withdrawnPrefix); ok {
		reason := strings.TrimPrefix(strings.TrimRight(rest, "\n"), ": ")
		return "", fmt.Errorf("%w: %s", ErrWithdrawn, clean(reason))
	}
	tok := strings.TrimRight(string(b), "\n")
	if err := Check(tok); err != nil {
		return "", err
	}
	return tok, nil
}
