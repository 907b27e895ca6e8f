package refresher

import (
	"bytes"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// TestRunRestoresALostTokenFile: when Verify finds the stored token gone
// while the refresher waits out a long interval, the next exchange happens
// at the next check, not at the end of the interval; checks stop while it
// backs off.
func TestRunRestoresALostTokenFile(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque}}
	r := newRefresher(s, &memStore{})
	r.Interval = time.Hour
	var lost atomic.Bool
	var checks atomic.Int32
	r.Verify = func(tok exchange.Token) error {
		checks.Add(1)
		// The file goes at 12 s on the bubble's clock, and is back once
		// written again.
		if time.Since(s.start) >= 12*time.Second && !lost.Swap(true) {
			return errors.New("token file removed")
		}
		return nil
	}
	var buf bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	got := runFor(t, r, s, 30*time.Second)
	assertOffsets(t, got, []time.Duration{0, 15 * time.Second}, 0)
	if !bytes.Contains(buf.Bytes(), []byte("token file lost, refreshing now")) || !bytes.Contains(buf.Bytes(), []byte("token file removed")) {
		t.Errorf("the loss was not logged with its reason:\n%s", buf.String())
	}
	if n := checks.Load(); n < 5 || n > 6 { // the one at 30 s races the end
		t.Errorf("%d checks in 30 s, want one every 5 s", n)
	}
}
