package tokendir

import (
	"errors"
	"fmt"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// tokenFile is the output every Dir has: the token's bytes and nothing
// else, what `cat` and the tokenfile package read. Its withdrawal is the
// record (tokenbytes.Withdrawal) that package tokenfile reads as "no
// token", and a shell or Python reader as no valid token.
func tokenFile(path string) Output {
	return Output{path: path, name: "token file",
		render:   func(tok exchange.Token, _ []byte, _ time.Time) []byte { return []byte(tok.Value.Reveal()) },
		withdraw: func(reason string, _ []byte, _ time.Time) []byte { return tokenbytes.Withdrawal(reason) }}
}

// ReadToken returns the token in the regular file (ErrNotRegular) at path
// by the rule every reader of it follows (tokenbytes.FromFile), for
// `tokend check` and `exec --token-env`. A withdrawal record is an error
// wrapping tokenbytes.ErrWithdrawn that gives the writer's reason. Errors
// name the path, never the content. It is safe for concurrent use.
func ReadToken(path string) (secret.String, error) {
	b, err := readFile(path, tokenbytes.MaxLen)
	if err != nil {
		return secret.String{}, fmt.Errorf("token file: %w", err)
	}
	tok, err := tokenbytes.FromFile(b)
	switch {
	case err == nil:
		return secret.New(tok), nil
	case errors.Is(err, tokenbytes.ErrWithdrawn):
		return secret.String{}, fmt.Errorf("token file %s holds no token: %w", path, err)
	case errors.Is(err, tokenbytes.ErrEmpty), errors.Is(err, tokenbytes.ErrTooLong):
		return secret.String{}, fmt.Errorf("token file %s is %w", path, err)
	}
	return secret.String{}, fmt.Errorf("token file %s has %w (it holds the token and optionally line feeds, nothing else)", path, err)
}
