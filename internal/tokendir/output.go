package tokendir

import (
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// tokenFile is the output every Dir has: the token's bytes and nothing
// else, what `cat` and the tokenfile package read.
type tokenFile string

func (p tokenFile) Path() string     { return string(p) }
func (p tokenFile) Describe() string { return "token file" }

func (p tokenFile) Render(tok exchange.Token, _ []byte, _ time.Time) ([]byte, error) {
	return []byte(tok.Value.Reveal()), nil
}

// RenderWithdrawal is the withdrawal record (tokenbytes.Withdrawal), which
// package tokenfile reads as "no token", and a shell or Python reader as no
// valid token.
func (p tokenFile) RenderWithdrawal(reason string, _ []byte, _ time.Time) []byte {
	return tokenbytes.Withdrawal(reason)
}
