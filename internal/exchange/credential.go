package exchange

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// credentialFile is a file holding a credential that is re-read before
// every exchange (its owner may rotate it). Its content follows the token
// file rule (tokenbytes.FromFile): the credential, then optionally line
// feeds.
type credentialFile struct {
	path string
	// err is the sentinel every error wraps.
	err error
	// absent says why the file may be missing or empty.
	absent string
	// denied is the fix when tokend may not read the file.
	denied string
}

// read returns the credential. Errors wrap f.err and name the path and
// the cause, never the content.
func (f credentialFile) read() (secret.String, error) {
	h, err := os.Open(f.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return secret.String{}, fmt.Errorf("%w: %s: %w (%s)", f.err, f.path, cause(err), f.absent)
		}
		if errors.Is(err, fs.ErrPermission) {
			return secret.String{}, fmt.Errorf("%w: %s exists but tokend may not read it: %w%s: %s",
				f.err, f.path, cause(err), fileAccessHint(f.path, err), f.denied)
		}
		return secret.String{}, fmt.Errorf("%w: %s: %w", f.err, f.path, cause(err))
	}
	defer h.Close()
	data, err := io.ReadAll(io.LimitReader(h, tokenbytes.MaxLen+1))
	if err != nil {
		return secret.String{}, fmt.Errorf("%w: reading %s: %w", f.err, f.path, cause(err))
	}
	v, err := tokenbytes.FromFile(data)
	switch {
	case errors.Is(err, tokenbytes.ErrEmpty):
		return secret.String{}, fmt.Errorf("%w: %s is empty (%s)", f.err, f.path, f.absent)
	case errors.Is(err, tokenbytes.ErrTooLong):
		return secret.String{}, fmt.Errorf("%w: %s is %w", f.err, f.path, err)
	case err != nil:
		return secret.String{}, fmt.Errorf("%w: %s has %w", f.err, f.path, err)
	}
	return secret.New(v), nil
}
