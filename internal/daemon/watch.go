package daemon

import (
	"context"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// dirWatch turns filesystem events on the token file into Recheck signals
// for the refresher, so that a removed or replaced token file is noticed at
// once without polling. It watches the directory, not the file: the file is
// replaced by rename, and may be deleted.
type dirWatch struct {
	w    *fsnotify.Watcher
	dir  string
	path string
	ch   chan struct{}
}

func newDirWatch(path string) (*dirWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	path = filepath.Clean(path)
	d := &dirWatch{w: w, dir: filepath.Dir(path), path: path, ch: make(chan struct{}, 1)}
	if err := w.Add(d.dir); err != nil {
		w.Close()
		return nil, err
	}
	return d, nil
}

// Run forwards events until ctx ends, then closes the watcher. An event for
// the token file or the directory itself, or a watcher error (a queue
// overflow may have dropped events), becomes one coalesced signal.
func (d *dirWatch) Run(ctx context.Context) error {
	defer d.w.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-d.w.Events:
			if !ok {
				return nil
			}
			if ev.Name == d.path || ev.Name == d.dir {
				d.signal()
			}
		case _, ok := <-d.w.Errors:
			if !ok {
				return nil
			}
			d.signal()
		}
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
func (d *dirWatch) rewatch() { _ = d.w.Add(d.dir) }
