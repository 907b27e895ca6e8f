package refresher

import (
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// Sink is where the refresher puts its tokens (in tokend, the token
// directory). The refresher calls it from its own goroutine only. Keeping
// a stored token in place is the Sink's concern, not the refresher's.
type Sink interface {
	// Store persists tok; changed reports whether what was stored before
	// differs. Storing the token already stored must write nothing. A
	// failed store is tried again (rule 3).
	Store(tok exchange.Token) (changed bool, err error)
	// Withdraw replaces the token stored by a record that there is none,
	// and why (rule 8); reason holds no secret. Withdrawing again for the
	// same reason must write nothing.
	Withdraw(reason string) (changed bool, err error)
}

// Observer is told what the refresher does, for health, metrics and the
// consumers of token changes. Its methods run on the refresher's
// goroutine, in the order of the list, and must not block. Embed
// NopObserver to implement only some of them.
type Observer interface {
	// Exchanged follows every exchange attempt, with its duration.
	Exchanged(took time.Duration, err error)
	// Stored follows every successful store; changed reports whether the
	// stored token changed.
	Stored(tok exchange.Token, changed bool)
	// StoreFailed follows a store that failed.
	StoreFailed(err error)
	// Waiting precedes each wait, with the time it ends (with a monotonic
	// reading).
	Waiting(until time.Time)
	// Failed follows every failed attempt (an exchange or a store) with
	// the number of failures since the last successful store, this one
	// included. The count is the refresher's own, the one its log lines
	// carry: observers mirror it rather than count again.
	Failed(err error, consecutive int)
	// Withdrawn follows every definitive refusal (rule 8), after Failed
	// and after the Sink's Withdraw (StoreFailed first when that failed):
	// no token may be used from now on, for reason (no secret in it).
	// The first call after a Stored begins the withdrawal; the next
	// Stored ends it.
	Withdrawn(reason string)
}

// NopObserver implements every Observer method as a no-op, for embedding.
type NopObserver struct{}

func (NopObserver) Exchanged(time.Duration, error) {}
func (NopObserver) Stored(exchange.Token, bool)    {}
func (NopObserver) StoreFailed(error)              {}
func (NopObserver) Waiting(time.Time)              {}
func (NopObserver) Failed(error, int)              {}
func (NopObserver) Withdrawn(string)               {}

// tell calls f with every Observer, in order.
func (r *Refresher) tell(f func(Observer)) {
	for _, o := range r.Observers {
		f(o)
	}
}
