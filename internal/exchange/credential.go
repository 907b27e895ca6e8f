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

// readCredential reads the credential from CredentialFile, re-read before
// every exchange (its owner may rotate it). Its content follows the token
// file rule (tokenbytes.FromFile): the credential, then optionally line
// feeds. Errors wrap ErrCredential and name the path and the cause, never
// the content.
func (e *Bearer) readCredential() (secret.String, error) {
	const absent = "is the secret that holds it mounted?"
	path := e.CredentialFile
	h, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return secret.String{}, fmt.Errorf("%w: %s: %w (%s)", ErrCredential, path, cause(err), absent)
		}
		if errors.Is(err, fs.ErrPermission) {
			return secret.String{}, fmt.Errorf("%w: %s exists but tokend may not read it: %w%s: %s", ErrCredential, path, cause(err), fileAccessHint(path, err),
				"make the file readable by the user tokend runs as (the pod's securityContext.fsGroup, or the secret volume's defaultMode)")
		}
		return secret.String{}, fmt.Errorf("%w: %s: %w", ErrCredential, path, cause(err))
	}
	defer h.Close()
	data, err := io.ReadAll(io.LimitReader(h, tokenbytes.MaxLen+1))
	if err != nil {
		return secret.String{}, fmt.Errorf("%w: reading %s: %w", ErrCredential, path, cause(err))
	}
	v, err := tokenbytes.FromFile(data)
	switch {
	case errors.Is(err, tokenbytes.ErrEmpty):
		return secret.String{}, fmt.Errorf("%w: %s is empty (%s)", ErrCredential, path, absent)
	case errors.Is(err, tokenbytes.ErrTooLong):
		return secret.String{}, fmt.Errorf("%w: %s is %w", ErrCredential, path, err)
	case err != nil:
		return secret.String{}, fmt.Errorf("%w: %s has %w", ErrCredential, path, err)
	}
	return secret.New(v), nil
}
