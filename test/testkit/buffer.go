// Package testkit holds the helpers that tokend's tests share: a
// goroutine-safe output buffer that tests can wait on, RSA keys and TLS
// certificates generated once per test process, unsigned JWTs, an event log
// to wait on, and an in-memory network for tests under testing/synctest.
//
// Only tests import it. Waits never judge elapsed time: they block until
// the awaited event happens, and Patience only bounds how long a broken
// test hangs before it fails with a clear message.
package testkit

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Patience bounds every wait of the kit. Reaching it fails the test; it is
// never a claim about how fast anything is, so it is generous enough for a
// machine whose cores are all busy.
const Patience = 2 * time.Minute

// Buffer is an io.Writer that many goroutines may write while a test reads
// it and waits for text to appear in it (a log line is an event).
// The zero value is ready to use; all methods are safe for concurrent use.
type Buffer struct {
	mu      sync.Mutex // guards b, changed
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

// Write appends p and wakes the waiters.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// String returns everything written since the last Reset.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset discards the content.
func (s *Buffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// next returns the content and a channel closed by the next write.
func (s *Buffer) next() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.b.String(), s.changed
}

// WaitFor blocks until ok holds for the content, and returns the content.
// It fails t when stop (which may be nil) is closed or receives first (the
// writer ended), or after Patience.
func (s *Buffer) WaitFor(t testing.TB, what string, stop <-chan error, ok func(string) bool) string {
	t.Helper()
	timeout := time.NewTimer(Patience)
	defer timeout.Stop()
	for {
		out, changed := s.next()
		if ok(out) {
			return out
		}
		select {
		case <-changed:
		case err := <-stop:
			t.Fatalf("ended (%v) while waiting for %s\n%s", err, what, out)
		case <-timeout.C:
			t.Fatalf("still waiting for %s after %v\n%s", what, Patience, out)
		}
	}
}

// WaitForText blocks until the content contains text; see WaitFor.
func (s *Buffer) WaitForText(t testing.TB, text string, stop <-chan error) string {
	t.Helper()
	return s.WaitFor(t, "output containing "+text, stop, func(out string) bool { return strings.Contains(out, text) })
}

// Len returns the length of the content, a mark for waits on what is
// written after it.
func (s *Buffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
