package tokenfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// MaxTokenLen is the size, in bytes, of the largest token file: the token
// and any line feeds after it.
const MaxTokenLen = tokenbytes.MaxLen

// readAttempts bounds how often readToken re-reads a file that changed while
// it was being read.
const readAttempts = 3

// errUnsettled means the file kept changing while it was read. It is not a
// state of the file: the write that changed it produces an event of its own.
var errUnsettled = errors.New("tokenfile: token file changed while being read")

// readToken reads and checks the token in the file at path, following
// symlinks anew. It re-reads when the file changed during the read, and
// returns errUnsettled if it never held still.
func readToken(path string) (string, error) {
	for range readAttempts {
		b, settled, err := readOnce(path)
		if err != nil {
			return "", err
		}
		if settled {
			return parseToken(b)
		}
	}
	return "", errUnsettled
}

// readOnce reads the file at path. settled is false when the file's size or
// modification time moved between the first stat and the end of the read,
// or the bytes read do not match its size: a writer was at work.
func readOnce(path string) (b []byte, settled bool, err error) {
	// Stat before opening: opening a FIFO or a device could block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, statError(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w: not a regular file (%s)", ErrInvalid, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, false, statError(err)
	}
	defer f.Close()
	if fi.Size() > MaxTokenLen {
		return nil, false, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxTokenLen)
	}
	b, err = io.ReadAll(io.LimitReader(f, MaxTokenLen+1))
	if err != nil {
		return nil, false, fmt.Errorf("tokenfile: %w", err)
	}
	after, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("tokenfile: %w", err)
	}
	settled = after.Size() == fi.Size() && after.ModTime().Equal(fi.ModTime()) &&
		int64(len(b)) == after.Size()
	return b, settled, nil
}

// statError classifies an error from opening the token file.
func statError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrMissing, err)
	}
	return fmt.Errorf("tokenfile: %w", err)
}

// parseToken applies the rule for a token file stated in the package doc
// (tokenbytes.FromFile): printable ASCII (0x21 to 0x7E), then optionally
// line feeds, which are removed; at most MaxTokenLen bytes in all. Errors
// name the problem and an offset, never the content.
func parseToken(b []byte) (string, error) {
	tok, err := tokenbytes.FromFile(b)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, tokenbytes.ErrEmpty):
		return "", ErrEmpty
	case errors.Is(err, tokenbytes.ErrTooLong):
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, tokenbytes.ErrWithdrawn):
		_, reason, _ := strings.Cut(err.Error(), ": ")
		return "", fmt.Errorf("%w: %s", ErrWithdrawn, reason)
	}
	return "", fmt.Errorf("%w: %w (a token file holds the token and optionally line feeds, nothing else)", ErrInvalid, err)
}
