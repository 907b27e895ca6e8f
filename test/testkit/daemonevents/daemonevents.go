// Package daemonevents turns the daemon's test hooks (daemon.Deps's
// Observer, Restored and Listening) into one stream of Events, in order,
// that tests wait on instead of polling files and clocks.
package daemonevents

import (
	"fmt"
	"net"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event, in the order a healthy run first sees them.
const (
	// HealthListening: the health server's socket is bound (Addr); it
	// accepts connections from then on.
	HealthListening EventKind = iota + 1
	// ExchangeFailed: an exchange attempt failed (Err).
	ExchangeFailed
	// TokenStored: a token was written to the token file, after an
	// exchange or to restore a lost file (Fingerprint, Changed).
	TokenStored
	// StoreFailed: writing the token file failed, after an exchange or
	// to restore a lost file (Err).
	StoreFailed
	// WaitStarted: the refresher waits until Until before its next
	// exchange; every step before it has finished.
	WaitStarted
	// TokenWithdrawn: the control plane definitively refused the
	// credential, and the token was withdrawn from every consumer
	// (Reason); follows each refusal.
	TokenWithdrawn
)

var kindNames = map[EventKind]string{
	HealthListening: "HealthListening", ExchangeFailed: "ExchangeFailed",
	TokenStored: "TokenStored", StoreFailed: "StoreFailed", WaitStarted: "WaitStarted",
	TokenWithdrawn: "TokenWithdrawn",
}

func (k EventKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one step of Init or Run. Only the fields its Kind names are
// set. An Event never holds a token: Fingerprint names it.
type Event struct {
	Kind EventKind
	// Err is why an ExchangeFailed or StoreFailed step failed.
	Err error
	// Fingerprint is secret.Fingerprint of a TokenStored token.
	Fingerprint string
	// Changed reports whether a TokenStored token differs from the one
	// the file held before.
	Changed bool
	// Until is when a WaitStarted wait ends (with a monotonic reading).
	Until time.Time
	// Addr is a HealthListening server's address.
	Addr net.Addr
	// Reason is why a TokenWithdrawn token was withdrawn.
	Reason string
}

func (e Event) String() string {
	switch e.Kind {
	case ExchangeFailed, StoreFailed:
		return fmt.Sprintf("%v(%v)", e.Kind, e.Err)
	case TokenStored:
		return fmt.Sprintf("%v(%s changed=%v)", e.Kind, e.Fingerprint, e.Changed)
	case HealthListening:
		return fmt.Sprintf("%v(%v)", e.Kind, e.Addr)
	case TokenWithdrawn:
		return fmt.Sprintf("%v(%s)", e.Kind, e.Reason)
	}
	return e.Kind.String()
}

// Observe returns d with its hooks set so that f receives every step of
// Init and Run as an Event, in order, on the goroutine that takes the
// step (the refresher's, the token directory's for a restore, or Run's
// for HealthListening). A restore is reported as TokenStored (changed),
// or StoreFailed when it failed. f must not block.
func Observe(d daemon.Deps, f func(Event)) daemon.Deps {
	d.Observer = observer{f: f}
	d.Restored = func(fingerprint string, err error) {
		if err != nil {
			f(Event{Kind: StoreFailed, Err: err})
			return
		}
		f(Event{Kind: TokenStored, Fingerprint: fingerprint, Changed: true})
	}
	d.Listening = func(addr net.Addr) { f(Event{Kind: HealthListening, Addr: addr}) }
	return d
}

// observer reports the refresher's steps as Events.
type observer struct {
	refresher.NopObserver
	f func(Event)
}

func (o observer) Exchanged(_ time.Duration, err error) {
	if err != nil {
		o.f(Event{Kind: ExchangeFailed, Err: err})
	}
}

func (o observer) Stored(tok exchange.Token, changed bool) {
	o.f(Event{Kind: TokenStored, Fingerprint: tok.Value.Fingerprint(), Changed: changed})
}

func (o observer) StoreFailed(err error) { o.f(Event{Kind: StoreFailed, Err: err}) }

func (o observer) Waiting(until time.Time) { o.f(Event{Kind: WaitStarted, Until: until}) }

func (o observer) Withdrawn(reason string) { o.f(Event{Kind: TokenWithdrawn, Reason: reason}) }
