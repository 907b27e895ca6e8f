// Package fswatch is fsnotify's watcher made safe to change from the
// goroutine that reads its events. fsnotify's inotify reader sends some
// errors while holding the lock that Add, Remove and WatchList take (on
// IN_MOVE_SELF of a watched directory also deleted, inotify_rm_watch fails
// with EINVAL), so a loop that reads Errors and calls Add deadlocks when
// such an error comes while it is in Add (fsnotify/fsnotify#123, #195).
// Watcher drains the errors on a goroutine of its own.
package fswatch

import "github.com/fsnotify/fsnotify"

// Watcher is an fsnotify.Watcher whose Errors, which only it reads, are
// drained at once and coalesced: while one error waits unread, later ones
// are dropped (each means "events may have been lost; look again").
// Events, Add, Remove and WatchList are the wrapped watcher's; Events'
// sends take no lock, so a consumer busy in Add delays them harmlessly.
// Both channels close once the wrapped watcher has ended (after Close, or
// when its reader fails). Every method may be called from any goroutine,
// also the one reading Events and Errors; Close once.
type Watcher struct {
	*fsnotify.Watcher
	Errors <-chan error
	pumped chan struct{} // closed when the error pump has ended
}

// New returns a Watcher of a new fsnotify watcher made by newWatcher
// (fsnotify.NewWatcher when nil; tests inject failures) that watches dirs,
// or the first error, having closed it.
func New(newWatcher func() (*fsnotify.Watcher, error), dirs ...string) (*Watcher, error) {
	if newWatcher == nil {
		newWatcher = fsnotify.NewWatcher
	}
	n, err := newWatcher()
	if err != nil {
		return nil, err
	}
	errs := make(chan error, 1)
	w := &Watcher{Watcher: n, Errors: errs, pumped: make(chan struct{})}
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
	for _, dir := range dirs { // with the pump running: Add may wait on a send
		if err := w.Add(dir); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// Close closes the wrapped watcher and returns once its error pump has
// ended. It does not wait for Events to be read: fsnotify's reader gives
// up a pending send when closed.
func (w *Watcher) Close() error {
	err := w.Watcher.Close()
	<-w.pumped
	return err
}
