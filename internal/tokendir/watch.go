package tokendir

import (
	"context"
	"path/filepath"
	"slices"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watch turns filesystem events on the outputs into coalesced signals, so
// that a removed or replaced output is noticed at once without polling. It
// watches the directories, not the files: a file is replaced by rename,
// and may be deleted.
type watch struct {
	newWatcher func() (*fsnotify.Watcher, error)
	dirs       []string // the outputs' directories, each once
	paths      []string // the outputs
	ch         chan struct{}
	ready      chan struct{} // closed once w is installed

	mu      sync.Mutex // guards w, stopped
	w       *fsnotify.Watcher
	stopped bool
}

// newWatch returns a watch on the directories of paths, not yet
// installed. newWatcher makes the watcher; fsnotify.NewWatcher when nil.
func newWatch(paths []string, newWatcher func() (*fsnotify.Watcher, error)) *watch {
	if newWatcher == nil {
		newWatcher = fsnotify.NewWatcher
	}
	w := &watch{newWatcher: newWatcher, ch: make(chan struct{}, 1), ready: make(chan struct{})}
	for _, p := range paths {
		p = filepath.Clean(p)
		w.paths = append(w.paths, p)
		if d := filepath.Dir(p); !slices.Contains(w.dirs, d) {
			w.dirs = append(w.dirs, d)
		}
	}
	return w
}

// install creates the watcher and watches the directories. It is a no-op
// once installed or after run has ended.
func (d *watch) install() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil || d.stopped {
		return nil
	}
	w, err := d.newWatcher()
	if err != nil {
		return err
	}
	for _, dir := range d.dirs {
		if err := w.Add(dir); err != nil {
			w.Close()
			return err
		}
	}
	d.w = w
	close(d.ready)
	return nil
}

func (d *watch) installed() bool {
	select {
	case <-d.ready:
		return true
	default:
		return false
	}
}

// run waits for the watch to be installed, then forwards events until ctx
// ends, and closes the watcher. An event for an output or one of the
// directories, or a watcher error (a queue overflow may have dropped
// events), becomes one coalesced signal.
func (d *watch) run(ctx context.Context) error {
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
			if slices.Contains(d.paths, ev.Name) || slices.Contains(d.dirs, ev.Name) {
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
func (d *watch) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.w != nil {
		d.w.Close()
	}
}

func (d *watch) signal() {
	select {
	case d.ch <- struct{}{}:
	default:
	}
}

// rewatch watches the directories again: one may have been removed and
// recreated since. Adding a watch that exists is a cheap no-op, so it is
// called after every successful write.
func (d *watch) rewatch() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil && !d.stopped {
		for _, dir := range d.dirs {
			_ = d.w.Add(dir)
		}
	}
}
