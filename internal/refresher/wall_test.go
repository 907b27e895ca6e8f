package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/test/testkit"
)

// fakeAlarms is a WallAlarm that the test fires: it records each alarm's
// time and whether it was stopped.
type fakeAlarms struct {
	mu     sync.Mutex // guards the fields
	at     []time.Time
	c      []chan struct{}
	stops  int
	refuse error // when set, every arming fails with it
}

func (f *fakeAlarms) arm(at time.Time) (<-chan struct{}, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return nil, nil, f.refuse
	}
	c := make(chan struct{}, 1)
	f.at, f.c = append(f.at, at), append(f.c, c)
	return c, func() { f.mu.Lock(); f.stops++; f.mu.Unlock() }, nil
}

// fire delivers the last alarm armed, as a resumed node or a wall clock
// that reached its time would.
func (f *fakeAlarms) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.c[len(f.c)-1] <- struct{}{}
}

func (f *fakeAlarms) state() (at []time.Time, stops int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...), f.stops
}

// wallWorld is a Refresher of 1-hour tokens at a 5-minute interval, whose
// wall clock the test moves without the monotonic clock (a suspended node)
// and whose every reading of it is counted: each reading is a wake-up.
type wallWorld struct {
	r      *Refresher
	s      *script
	offset atomic.Int64 // the wall clock's lead over the bubble's
	reads  atomic.Int32 // calls of Now
	waits  testkit.Log[time.Time]
}

func newWallWorld(alarms func(time.Time) (<-chan struct{}, func(), error), log *slog.Logger) *wallWorld {
	w := &wallWorld{}
	wall := func() time.Time { return time.Now().Add(time.Duration(w.offset.Load())) }
	w.s = &script{steps: []func(int) (exchange.Token, error){func(n int) (exchange.Token, error) {
		return exchange.Token{Value: secret.New(fmt.Sprint("tok-", n)), Expiry: wall().Add(time.Hour)}, nil
	}}}
	w.r = newRefresher(w.s, &memStore{})
	w.r.Logger = log
	w.r.Interval = 5 * time.Minute
	w.r.Rand = func() float64 { return 0.5 } // a first wait of minutes
	w.r.Now = func() time.Time { w.reads.Add(1); return wall() }
	w.r.WallAlarm = alarms
	w.r.Observers = []Observer{waitLog{l: &w.waits}}
	return w
}

// start runs the refresher until the test ends and returns once it waits
// after its first exchange, with the end of that wait.
func (w *wallWorld) start(t *testing.T) time.Time {
	w.s.start = time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- w.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	synctest.Wait()
	waits := w.waits.All()
	if len(waits) != 1 || len(w.s.offsets()) != 1 {
		t.Fatalf("after the start: %d exchanges, %d waits; want one of each", len(w.s.offsets()), len(waits))
	}
	return waits[0]
}

// idle lets the bubble's clock run for d with nothing else happening, and
// returns how many times the wall clock was read meanwhile.
func (w *wallWorld) idle(d time.Duration) int32 {
	n := w.reads.Load()
	time.Sleep(d)
	synctest.Wait()
	return w.reads.Load() - n
}

// waitLog records the end of each wait.
type waitLog struct {
	NopObserver
	l *testkit.Log[time.Time]
}

func (o waitLog) Waiting(until time.Time) { o.l.Add(until) }

// TestWaitSleepsUntilTheWallAlarm: with a WallAlarm, the wait for a token
// whose expiry is known reads no clock until it ends (rule 5: no check
// every minute), armed for the wall time the exchange is due. When the
// node resumes from a suspend (the wall clock an hour on, the monotonic
// clock not), the alarm fires and the exchange happens at once. Without a
// WallAlarm, the wall clock is read every minute instead.
func TestWaitSleepsUntilTheWallAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alarms := &fakeAlarms{}
		w := newWallWorld(alarms.arm, slog.New(slog.DiscardHandler))
		until := w.start(t)
		if got, _ := alarms.state(); len(got) != 1 || !got[0].Equal(until.Round(0)) {
			t.Fatalf("alarms armed for %v, want one for the end of the wait, %v", got, until.Round(0))
		}
		if idle := time.Until(until) - time.Second; idle <= time.Minute {
			t.Fatalf("the first wait lasts %v; the test needs one of minutes", idle)
		}
		if n := w.idle(time.Until(until) - time.Second); n != 0 {
			t.Errorf("the wall clock was read %d times during the wait, want none", n)
		}

		// The node is suspended for an hour and resumes.
		w.offset.Store(int64(time.Hour))
		alarms.fire()
		synctest.Wait()
		if got, now := w.s.offsets(), time.Since(w.s.start); len(got) != 2 || got[1] != now {
			t.Fatalf("exchanges at %v, want a second one at once when the alarm fired (%v)", got, now)
		}
		if _, n := alarms.state(); n != 1 {
			t.Errorf("%d alarms stopped after the first wait, want 1", n)
		}
	})

	synctest.Test(t, func(t *testing.T) {
		w := newWallWorld(nil, slog.New(slog.DiscardHandler))
		until := w.start(t)
		idle := time.Until(until) - time.Second
		if idle < time.Minute {
			t.Fatalf("the first wait lasts %v; the test needs one of minutes", idle)
		}
		if n, want := w.idle(idle), int32(idle/time.Minute); n != want {
			t.Errorf("without a WallAlarm the wall clock was read %d times in %v, want %d (once a minute)", n, idle, want)
		}
	})
}

// TestWaitEarlyAlarm: an alarm that fires before the wall clock reaches
// its time (the clock was set back, or the node resumed early) only
// makes the wait look; the exchange happens when it is due.
func TestWaitEarlyAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alarms := &fakeAlarms{}
		w := newWallWorld(alarms.arm, slog.New(slog.DiscardHandler))
		until := w.start(t)
		time.Sleep(time.Minute)
		alarms.fire()
		synctest.Wait()
		if got := w.s.offsets(); len(got) != 1 {
			t.Fatalf("exchanges at %v after an early alarm, want none yet", got)
		}
		time.Sleep(time.Until(until))
		synctest.Wait()
		if got := w.s.offsets(); len(got) != 2 || got[1] != until.Sub(w.s.start) {
			t.Fatalf("exchanges at %v, want the second when the wait ends, at %v", got, until.Sub(w.s.start))
		}
	})
}

// TestWaitAlarmRefused: a WallAlarm that fails (no timerfd) is warned
// about once, and the wait checks the wall clock every minute instead, so
// a resumed node refreshes within a minute.
func TestWaitAlarmRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		alarms := &fakeAlarms{refuse: errors.New("timerfd_create: operation not permitted")}
		var logs testkit.Buffer
		w := newWallWorld(alarms.arm, slog.New(slog.NewTextHandler(&logs, nil)))
		w.start(t)
		time.Sleep(30 * time.Second)
		w.offset.Store(int64(time.Hour))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := w.s.offsets(); len(got) != 2 {
			t.Fatalf("exchanges at %v, want a second one within a minute of the resume", got)
		}
		if got := logs.String(); strings.Count(got, "cannot set an alarm on the wall clock") != 1 || !strings.Contains(got, "operation not permitted") {
			t.Errorf("log %q: want one warning naming the failure", got)
		}
	})
}
