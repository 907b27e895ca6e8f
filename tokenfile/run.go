package tokenfile

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/ambient-code/tokend/internal/fswatch"
	"github.com/fsnotify/fsnotify"
)

// Run watches the token file until ctx ends, then returns nil. It returns
// ErrRunning at once if the Watcher is already running; otherwise it does
// not return before ctx ends, whatever happens to the file or the watch.
//
// Run works in these steps:
//
//  1. It watches the real directory that holds the file (or the deepest
//     one that exists yet) and each directory where a symlink on the path
//     is swapped (the kubelet's "..data", "current -> v2").
//  2. Only then it reads the file, so no change falls between read and watch.
//  3. On an event that may have replaced the file (create, which is how a
//     rename into place arrives, remove, rename, attribute change) it reads
//     the file again and moves the watches to where the path now leads.
//  4. On an in-place write it reads the file once it has been left alone
//     for a moment, so a truncate-and-write is not caught half way.
//  5. Every poll interval it reads the file and checks the watches. A watch
//     that cannot be created or breaks is logged and rebuilt, polling
//     meanwhile. A new token that no event announced is settled as in 4.
//
// The goroutine that calls Run is the one that runs the change callbacks.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer w.running.Store(false)
	l := &loop{w: w}
	defer l.closeNotify()
	l.rebuild()
	l.rebuilt = false // the first failure may rebuild at once
	l.refresh()
	tick := w.hooks.tick
	if tick == nil {
		t := time.NewTicker(w.poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		var events <-chan fsnotify.Event // nil, never ready, while polling only
		var errs <-chan error
		if l.n != nil {
			events, errs = l.n.Events, l.n.Errors
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			l.onEvents(ev, ok)
		case err, ok := <-errs:
			l.onError(err, ok)
		case <-l.settle:
			l.onSettle()
		case <-tick:
			l.rebuilt = false
			if l.n == nil {
				l.rebuild()
			}
			l.check()
		case <-w.kick:
			w.deliver()
		}
	}
}

// loop is the state of one Run call. It belongs to Run's goroutine.
type loop struct {
	w        *Watcher
	n        *fswatch.Watcher // nil while polling only
	resolved string           // the file's path with symlinks resolved, at the last sync
	rebuilt  bool             // the watch was rebuilt since the last tick
	addErr   string           // the last error adding a watch, to log each once
	buildErr string           // the last error creating the watcher, likewise

	settle <-chan time.Time // fires when an in-place write may be over; nil if none
	dirty  bool             // written again since the settle timer started
	rounds int              // settle timers started in a row
}

// refresh reads the file, runs the callbacks, and brings the watches up to
// date; if that installed a watch, it reads again, in case the file changed
// before the watch was in place.
func (l *loop) refresh() {
	l.w.reload("")
	l.w.deliver()
	if l.sync() {
		l.w.reload("")
		l.w.deliver()
	}
}

// onEvents handles ev and whatever else is queued behind it, reading the
// file at most once for the whole batch.
func (l *loop) onEvents(ev fsnotify.Event, ok bool) {
	var replaced, written bool
	for more := true; more; {
		if !ok {
			l.broken(errors.New("tokenfile: event channel closed"))
			return
		}
		if ev.Op&^fsnotify.Write != 0 {
			replaced = true
		} else if name := filepath.Clean(ev.Name); name == l.w.path || name == l.resolved {
			written = true
		}
		select {
		case ev, ok = <-l.n.Events:
		default:
			more = false
		}
	}
	switch {
	case written:
		l.startSettle()
	case replaced && l.settle == nil:
		l.refresh()
	}
}

// startSettle postpones the read until in-place writes stop.
func (l *loop) startSettle() {
	if l.settle != nil {
		l.dirty = true
		return
	}
	l.settle, l.dirty, l.rounds = l.w.hooks.after(settleDelay), false, 0
}

func (l *loop) onSettle() {
	if l.dirty && l.rounds < maxSettleRounds {
		l.settle, l.dirty = l.w.hooks.after(settleDelay), false
		l.rounds++
		return
	}
	l.settle = nil
	l.refresh()
}

func (l *loop) onError(err error, ok bool) {
	switch {
	case !ok:
		l.broken(errors.New("tokenfile: error channel closed"))
	case errors.Is(err, fsnotify.ErrEventOverflow):
		l.w.log.Warn("tokenfile: file events were lost; re-reading", "err", err)
		l.sync()
		l.check()
	default:
		l.broken(err)
	}
}

// check reads the file when no event says what happened to it (a poll,
// lost events, a broken watch); a new token found so waits for the settle
// timer, as in Run's step 5.
func (l *loop) check() {
	if l.settle != nil {
		return // a write is settling; its timer reads the file
	}
	if tok, err := readToken(l.w.path); err == nil && tok != l.w.Token() {
		l.startSettle()
	} else {
		l.refresh()
	}
}

// broken replaces a failed watch: at once the first time in a poll
// interval, at the next tick after that, polling meanwhile.
func (l *loop) broken(err error) {
	l.closeNotify()
	if l.rebuilt {
		l.w.log.Error("tokenfile: file watch failed again; polling until the next poll rebuilds it",
			"err", err, "interval", l.w.poll)
	} else {
		l.w.log.Error("tokenfile: file watch failed; rebuilding it", "err", err)
		l.rebuild()
	}
	l.check()
}
