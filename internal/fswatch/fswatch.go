// Package fswatch is fsnotify's watcher made safe to change from the
// goroutine that reads its events: the one job of this package.
//
// fsnotify's inotify reader sends some errors while it holds the lock that
// Add, Remove and WatchList take (for example, on IN_MOVE_SELF of a watched
// directory that was also deleted, inotify_rm_watch fails with EINVAL and
// the error is sent under the lock). A loop that both reads Errors and
// calls Add therefore deadlocks when that error arrives while it is in Add:
// the class of fsnotify/fsnotify#123 and #195. Watcher drains the errors on
// a goroutine of its own, so its reader never waits on its user.
package fswatch

import (
	"github.com/fsnotify/fsnotify"
)

// Watcher wraps one fsnotify.Watcher. Events is the wrapped watcher's
// channel: its sends take no lock, so a consumer busy in Add delays them
// harmlessly. Errors is drained at once and coalesced: while one error
// waits unread, later ones are dropped (each means "events may have been
// lost; look again", and one unread error already says so). Both channels
// are closed once the wrapped watcher has ended (after Close, or when its
// reader fails).
//
// Add, Remove and WatchList may be called from any goroutine, also from
// the one reading Events and Errors; Close too, once.
type Watcher struct {
	n      *fsnotify.Watcher
	Events <-chan fsnotify.Event
	Errors <-chan error
	pumped chan struct{} // closed when the error pump has ended
}

// New returns a Watcher of a new fsnotify watcher made by newWatcher
// (fsnotify.NewWatcher when nil; tests inject failures), and its error.
func New(newWatcher func() (*fsnotify.Watcher, error)) (*Watcher, error) {
	if newWatcher == nil {
		newWatcher = fsnotify.NewWatcher
	}
	n, err := newWatcher()
	if err != nil {
		return nil, err
	}
	return Wrap(n), nil
}

// Wrap takes n over: from now on only the Watcher reads n's channels.
func Wrap(n *fsnotify.Watcher) *Watcher {
	errs := make(chan error, 1)
	w := &Watcher{n: n, Events: n.Events, Errors: errs, pumped: make(chan struct{})}
	go func() {
		defer close(w.pumped)
		defer close(errs)
		for err := range n.Errors {
			select {
			case errs <- err:
			default: // one already waits unread
			}
		}
	}()
	return w
}

// Add watches name; see fsnotify.Watcher.Add.
func (w *Watcher) Add(name string) error { return w.n.Add(name) }

// Remove stops watching name; see fsnotify.Watcher.Remove.
func (w *Watcher) Remove(name string) error { return w.n.Remove(name) }

// WatchList returns the watched paths; see fsnotify.Watcher.WatchList.
func (w *Watcher) WatchList() []string { return w.n.WatchList() }

// Unwrap returns the fsnotify watcher (tests inspect its watches).
func (w *Watcher) Unwrap() *fsnotify.Watcher { return w.n }

// Close closes the wrapped watcher and returns once its error pump has
// ended. It does not wait for Events to be read: fsnotify's reader gives
// up a pending send when closed.
func (w *Watcher) Close() error {
	err := w.n.Close()
	<-w.pumped
	return err
}
