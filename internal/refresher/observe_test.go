package refresher

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// recorder is an Observer that writes down each call.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (o *recorder) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, s)
}

func (o *recorder) Exchanged(_ time.Duration, err error) { o.add(fmt.Sprintf("exchanged(%v)", err)) }
func (o *recorder) Stored(tok exchange.Token, changed bool) {
	o.add(fmt.Sprintf("stored(%s,%v)", tok.Value.Reveal(), changed))
}
func (o *recorder) StoreFailed(err error) { o.add(fmt.Sprintf("storeFailed(%v)", err)) }
func (o *recorder) Waiting(time.Time)     { o.add("waiting") }
func (o *recorder) Failed(_ error, n int) { o.add(fmt.Sprintf("failed(%d)", n)) }
func (o *recorder) Withdrawn(why string)  { o.add(fmt.Sprintf("withdrawn(%s)", why)) }

// storedOnly implements one method and embeds NopObserver for the others.
type storedOnly struct {
	NopObserver
	n int
}

func (o *storedOnly) Stored(exchange.Token, bool) { o.n++ }

// TestObserversSeeEveryStep: every observer in the list is told of each
// exchange, store, failed store and wait, in order; one that embeds
// NopObserver implements only what it needs.
func TestObserversSeeEveryStep(t *testing.T) {
	s := &script{steps: []func(int) (exchange.Token, error){opaque, fail(errors.New("refused")), opaque}}
	m := &memStore{}
	m.fail.Store(1) // the first store fails; the token is stored again
	r := newRefresher(s, m)
	r.Interval = time.Minute
	a, b, c := &recorder{}, &recorder{}, &storedOnly{}
	r.Observers = []Observer{a, c, b}
	runFor(t, r, s, 90*time.Second)
	want := []string{"exchanged(<nil>)", "storeFailed(disk full)", "failed(1)", "waiting", "stored(tok-1,true)", "waiting", "exchanged(refused)", "failed(1)", "waiting", "exchanged(<nil>)", "stored(tok-3,true)", "waiting"}
	if !slices.Equal(a.calls, want) || !slices.Equal(b.calls, want) {
		t.Errorf("observers saw\n%v\n%v\nwant %v", a.calls, b.calls, want)
	}
	if c.n != 2 {
		t.Errorf("the Stored-only observer saw %d stores, want 2", c.n)
	}
}
