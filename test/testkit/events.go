package testkit

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Log records events that any goroutine adds, in the order they were
// added, and lets a test wait for them. The zero value is ready to use; all
// methods are safe for concurrent use.
type Log[E any] struct {
	mu      sync.Mutex // guards events, changed
	events  []E
	changed chan struct{} // closed and replaced on every Add
}

// Add records e and wakes the waiters. It never blocks for long, so it may
// be called from a hook that must not block.
func (l *Log[E]) Add(e E) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// All returns a copy of the events recorded so far.
func (l *Log[E]) All() []E {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]E(nil), l.events...)
}

// Len returns how many events have been recorded.
func (l *Log[E]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func (l *Log[E]) from(i int) ([]E, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return append([]E(nil), l.events[min(i, len(l.events)):]...), l.changed
}

// Cursor reads a Log in order, from the first event on.
func (l *Log[E]) Cursor() *Cursor[E] { return &Cursor[E]{log: l} }

// CursorAtEnd reads a Log from the next event to be added.
func (l *Log[E]) CursorAtEnd() *Cursor[E] { return &Cursor[E]{log: l, pos: l.Len()} }

// Cursor is a position in a Log. A Cursor is for one goroutine.
type Cursor[E any] struct {
	log *Log[E]
	pos int
	// Stop, when set, fails a Next that is waiting when it receives or is
	// closed: the component that adds the events has ended.
	Stop <-chan error
}

// Next returns the first event at or after the cursor that ok accepts, and
// moves the cursor past it; the events it skipped are returned as well. It
// waits for such an event as long as needed, failing t when Stop fires or
// after Patience.
func (c *Cursor[E]) Next(t testing.TB, what string, ok func(E) bool) (E, []E) {
	t.Helper()
	timeout := time.NewTimer(Patience)
	defer timeout.Stop()
	var skipped []E
	for {
		events, changed := c.log.from(c.pos)
		for _, e := range events {
			c.pos++
			if ok(e) {
				return e, skipped
			}
			skipped = append(skipped, e)
		}
		select {
		case <-changed:
		case err := <-c.Stop:
			t.Fatalf("ended (%v) while waiting for %s; events since: %s", err, what, describe(skipped))
		case <-timeout.C:
			t.Fatalf("still waiting for %s after %v; events since: %s", what, Patience, describe(skipped))
		}
	}
}

func describe[E any](events []E) string {
	if len(events) > 20 {
		return fmt.Sprintf("%v ... (%d in all)", events[len(events)-20:], len(events))
	}
	return fmt.Sprint(events)
}

// Await receives one value from ch, failing t after Patience.
func Await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timeout := time.NewTimer(Patience)
	defer timeout.Stop()
	select {
	case v := <-ch:
		return v
	case <-timeout.C:
		t.Fatalf("still waiting for %s after %v; goroutines:\n%s", what, Patience, goroutines())
		var zero T
		return zero
	}
}

// goroutines is the stacks of every goroutine, for the message of a wait
// that timed out: what is stuck, and where. Stacks hold addresses and
// names, never a value a test handed to the code under test.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
