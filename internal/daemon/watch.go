package daemon

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
)

// dirWatch turns filesystem events on the token file into Recheck signals
// for the refresher, so that a removed or replaced token file is noticed at
// once without polling. It watches the directory, not the file: the file is
// replaced by rename, and may be deleted.
//
// When the watch cannot be installed (inotify instances or watches
// exhausted), the refresher's minute check is the fallback, and every such
// check tries to install the watch again.
type dirWatch struct {
	newWatcher func() (*fsnotify.Watcher, error)
	dir, path  string
	ch         chan struct{} // Recheck signals, coalesced
	ready      chan struct{} // closed once w is installed

	mu      sync.Mutex // guards w, stopped
	w       *fsnotify.Watcher
	stopped bool
}

// newDirWatch returns a watch on the directory of path, not yet installed.
// newWatcher makes the watcher; fsnotify.NewWatcher when nil.
func newDirWatch(path string, newWatcher func() (*fsnotify.Watcher, error)) *dirWatch {
	if newWatcher == nil {
		newWatcher = fsnotify.NewWatcher
	}
	path = filepath.Clean(path)
	return &dirWatch{newWatcher: newWatcher, dir: filepath.Dir(path), path: path,
		ch: make(chan struct{}, 1), ready: make(chan struct{})}
}

// install creates the watcher and watches the directory. It is a no-op
// once installed or after Run has ended.
func (d *dirWatch) install() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil || d.stopped {
		return nil
	}
	w, err := d.newWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(d.dir); err != nil {
		w.Close()
		return err
	}
	d.w = w
	close(d.ready)
	return nil
}

// attach feeds r from d: Recheck signals, a rewatch after every good
// write, and a new attempt to install the watch at each of r's checks
// while it is missing. Call it once, before r runs, after r.Store and
// r.Verify are set.
func (d *dirWatch) attach(r *refresher.Refresher, log *slog.Logger) {
	r.Recheck = d.ch
	store, verify := r.Store, r.Verify
	r.Store = func(tok exchange.Token) (bool, error) {
		changed, err := store(tok)
		if err == nil {
			d.rewatch()
		}
		return changed, err
	}
	r.Verify = func(tok exchange.Token) error {
		if !d.installed() {
			if err := d.install(); err != nil {
				log.Debug("still cannot watch the token directory", slog.String("error", err.Error()))
			} else {
				log.Info("watching the token directory again", slog.String("dir", d.dir))
			}
		}
		return verify(tok)
	}
}

func (d *dirWatch) installed() bool {
	select {
	case <-d.ready:
		return true
	default:
		return false
	}
}

// Run waits for the watch to be installed, then forwards events until ctx
// ends, and closes the watcher. An event for the token file or the
// directory itself, or a watcher error (a queue overflow may have dropped
// events), becomes one coalesced signal.
func (d *dirWatch) Run(ctx context.Context) error {
	defer d.stop()
	select {
	case <-ctx.Done():
		return nil
	case <-d.ready:
	}
	d.mu.Lock()
	w := d.w
	d.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Name == d.path || ev.Name == d.dir {
				d.signal()
			}
		case _, ok := <-w.Errors:
			if !ok {
				return nil
			}
			d.signal()
		}
	}
}

// stop closes the watcher, and keeps install from making another.
func (d *dirWatch) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.w != nil {
		d.w.Close()
	}
}

func (d *dirWatch) signal() {
	select {
	case d.ch <- struct{}{}:
	default:
	}
}

// rewatch watches the directory again: it may have been removed and
// recreated since. Adding a watch that exists is a cheap no-op, so it is
// called after every successful write.
func (d *dirWatch) rewatch() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil && !d.stopped {
		_ = d.w.Add(d.dir)
	}
}
