// Package tokenbytes is the one rule for the bytes of a bearer token, used
// wherever tokend takes or hands out one: the exchange's answer, the token
// file (tokend check, package tokenfile), and the credentials tokend sends
// (the bearer credential).
//
// A token is 1 to MaxLen bytes of printable ASCII, 0x21 to 0x7E: no space,
// tab, carriage return, line feed, control or non-ASCII byte, so that a
// reader that pastes it into an HTTP header cannot be made to inject
// another. A file may follow the token with line feeds, which are not part
// of it (FromFile); a token itself never holds one (Check).
//
// Errors name the problem and a byte offset, never the bytes. The functions
// are pure and safe for concurrent use.
package tokenbytes

import (
	"errors"
	"strconv"
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
)

// ByteError reports the first byte that a token may not hold.
type ByteError struct {
	// Offset is the byte's position, from 0.
	Offset int
}

func (e *ByteError) Error() string {
	return "a whitespace, control or non-ASCII byte at offset " + strconv.Itoa(e.Offset)
}

// Check returns nil when v is a token by the package rule: ErrEmpty,
// ErrTooLong or a *ByteError otherwise. A trailing line feed is a
// *ByteError: use FromFile for a file's content.
func Check[T ~string | ~[]byte](v T) error {
	switch {
	case len(v) == 0:
		return ErrEmpty
	case len(v) > MaxLen:
		return ErrTooLong
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return &ByteError{Offset: i}
		}
	}
	return nil
}

// FromFile returns the token in a file's content b: the token, then
// optionally line feeds, which are dropped, at most MaxLen bytes in all.
// Its errors are Check's.
func FromFile(b []byte) (string, error) {
	if len(b) > MaxLen {
		return "", ErrTooLong
	}
	n := len(b)
	for n > 0 && b[n-1] == '\n' {
		n--
	}
	if err := Check(b[:n]); err != nil {
		return "", err
	}
	return string(b[:n]), nil
}
