package daemon

import (
	"fmt"
	"net"
	"time"

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

// Event is one step of Init or Run, as Deps.Observe receives it. Only the
// fields its Kind names are set. An Event never holds a token: Fingerprint
// names it.
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

// emit hands e to d.Observe, when set.
func (d Deps) emit(e Event) {
	if d.Observe != nil {
		d.Observe(e)
	}
}

// eventObserver reports each step of the refresher to d.Observe. Run and
// Init put it last in the refresher's list of observers, so that a test
// woken by an event also sees its effect on health and the consumers.
type eventObserver struct {
	refresher.NopObserver
	d Deps
}

func (o eventObserver) Exchanged(_ time.Duration, err error) {
	if err != nil {
		o.d.emit(Event{Kind: ExchangeFailed, Err: err})
	}
}

func (o eventObserver) Stored(tok exchange.Token, changed bool) {
	o.d.emit(Event{Kind: TokenStored, Fingerprint: tok.Value.Fingerprint(), Changed: changed})
}

func (o eventObserver) StoreFailed(err error) { o.d.emit(Event{Kind: StoreFailed, Err: err}) }

func (o eventObserver) Waiting(until time.Time) { o.d.emit(Event{Kind: WaitStarted, Until: until}) }

// restored reports the token directory's restore of a lost output
// (tokendir.Dir.Restored) as TokenStored, or StoreFailed when it failed.
func (d Deps) restored(fingerprint string, err error) {
	if err != nil {
		d.emit(Event{Kind: StoreFailed, Err: err})
		return
	}
	d.emit(Event{Kind: TokenStored, Fingerprint: fingerprint, Changed: true})
}

func (o eventObserver) Withdrawn(reason string) {
	o.d.emit(Event{Kind: TokenWithdrawn, Reason: reason})
}
