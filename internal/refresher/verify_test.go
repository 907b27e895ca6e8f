package refresher

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// lossAt returns a Verify that reports the token gone once, on the first
// check at or after at (on the bubble's clock), and counts its calls.
func lossAt(s *script, at time.Duration, checks *atomic.Int32) func(exchange.Token) error {
	var lost atomic.Bool
	return func(exchange.Token) error {
		checks.Add(1)
		if time.Since(s.start) >= at && !lost.Swap(true) {
			return errors.New("token file removed")
		}
		return nil
	}
}

// TestRunRestoresALostTokenFile: when Verify finds the stored token gone
// while the refresher waits out a long interval, the stored token is written
// again at that check, without an exchange.
func TestRunRestoresALostTokenFile(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	m := &memStore{}
	r := newRefresher(s, m)
	r.Interval = time.Hour
	r.VerifyEvery = 5 * time.Second
	var checks atomic.Int32
	m.verify = lossAt(s, 12*time.Second, &checks)
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	got := runFor(t, r, s, 30*time.Second)
	assertOffsets(t, got, []time.Duration{0}, 0)
	if n := m.calls.Load(); n != 2 {
		t.Errorf("%d stores, want the first and one restore", n)
	}
	if !bytes.Contains(buf.Bytes(), []byte("token file lost, wrote the stored token again")) || !bytes.Contains(buf.Bytes(), []byte("token file removed")) {
		t.Errorf("the loss was not logged with its reason:\n%s", buf.String())
	}
	if n := checks.Load(); n < 5 || n > 6 { // the one at 30 s races the end
		t.Errorf("%d checks in 30 s, want one every 5 s", n)
	}
}

// TestRunRefreshesWhenRestoreFails: a lost token file that cannot be
// written again (say the directory is gone) makes the next exchange happen
// at once rather than at the end of the interval.
func TestRunRefreshesWhenRestoreFails(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	m := &memStore{}
	r := newRefresher(s, m)
	r.Interval = time.Hour
	r.VerifyEvery = 5 * time.Second
	var checks atomic.Int32
	verify := lossAt(s, 12*time.Second, &checks)
	m.verify = func(tok exchange.Token) error {
		err := verify(tok)
		if err != nil {
			m.fail.Store(1)
		}
		return err
	}
	got := runFor(t, r, s, 30*time.Second)
	assertOffsets(t, got, []time.Duration{0, 15 * time.Second}, 0)
}

// TestRecheckVerifiesAtOnce: a signal on the Sink's Attention channel (a
// filesystem event) runs Verify immediately instead of at the next period.
func TestRecheckVerifiesAtOnce(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	m := &memStore{}
	r := newRefresher(s, m)
	r.Interval = time.Hour
	var checks atomic.Int32
	m.verify = lossAt(s, 0, &checks)
	synctest.Test(t, func(t *testing.T) {
		// A channel the bubble blocks on must be made inside it.
		recheck := make(chan struct{}, 1)
		m.attention = recheck
		s.start = time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.Run(ctx)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if checks.Load() != 0 {
			t.Fatalf("Verify ran before any signal or period")
		}
		recheck <- struct{}{}
		synctest.Wait()
		if checks.Load() != 1 || m.calls.Load() != 2 {
			t.Fatalf("after a signal: %d checks, %d stores; want 1 check and a restore", checks.Load(), m.calls.Load())
		}
		cancel()
		synctest.Wait()
	})
}
