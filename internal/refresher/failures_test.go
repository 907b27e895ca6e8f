package refresher

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// failCounter is an Observer that reports each Failed count.
type failCounter func(n int)

func (failCounter) Exchanged(time.Duration, error) {}
func (failCounter) Stored(exchange.Token, bool)    {}
func (failCounter) StoreFailed(error)              {}
func (failCounter) Waiting(time.Time)              {}
func (f failCounter) Failed(_ error, n int)        { f(n) }
func (failCounter) Withdrawn(string)               {}

// TestFailuresCountedOnce: Observer.Failed carries the refresher's own count
// of consecutive failures, exchange and store failures alike, the count its
// log lines carry; a store ends the run of failures.
func TestFailuresCountedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := errors.New("connection refused")
		s := &script{steps: []func(int) (exchange.Token, error){fail(down), fail(down), opaque}}
		st := &memStore{}
		st.fail.Store(1) // the first good token cannot be stored at once
		var counts []int
		var logs bytes.Buffer
		r := &Refresher{Exchanger: s, Sink: st, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Observers: []Observer{failCounter(func(n int) { counts = append(counts, n) })}}
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		if _, err := r.Once(ctx); err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 2, 3}; !slices.Equal(counts, want) {
			t.Errorf("Failed reported %v, want %v (two exchanges, one store)", counts, want)
		}
		for _, n := range []string{"consecutive_failures=1", "consecutive_failures=2", "consecutive_failures=3", "after_failures=3"} {
			if !strings.Contains(logs.String(), n) {
				t.Errorf("logs lack %s:\n%s", n, logs.String())
			}
		}
		// After a store, the count starts again at one.
		s.mu.Lock()
		s.steps = append(s.steps, fail(down))
		s.mu.Unlock()
		short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
		defer cancelShort()
		r.Once(short)
		if len(counts) < 4 || counts[3] != 1 {
			t.Errorf("Failed reported %v; after a store, the next failure must count 1", counts)
		}
	})
}
