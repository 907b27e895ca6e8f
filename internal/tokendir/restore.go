package tokendir

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/fswatch"
)

const (
	checkEvery = time.Minute // Run's check while unwatched, and its longest retry delay
	firstRetry = time.Second // Run's first retry of a failed restore, then doubled
)

// Watch installs the watch on the outputs' directories (a file is replaced
// by rename, and may be deleted), so that Run learns of a lost output at
// once. On an error (inotify instances or watches exhausted) Run checks
// every minute instead, and tries again at each check. Call it before Run,
// which closes the watch; never concurrently with Run.
func (d *Dir) Watch() (err error) {
	d.w, err = fswatch.New(d.newWatcher, d.dirs...)
	return err
}

// Run keeps the outputs in place until ctx ends, then closes the watch and
// returns nil. Once a Store has written every output, Run checks them:
//
//  1. at once on a watch event for an output or its directory, or a watch
//     error (events may have been lost); nothing else wakes a watching
//     Run, so an idle tokend sleeps. Unwatched (the watch failed or
//     closed), Run checks every minute. What no watch reports (a write
//     through a hard link elsewhere) the next Store repairs;
//  2. an output that no longer holds the bytes Store wrote last is written
//     again with them (no exchange needed, so this works while the issuer
//     is down), logged with what became of it, and reported to Restored;
//  3. a restore that fails (the directory gone, the volume full) is tried
//     again after a second, doubling up to a minute (an exchange would not
//     help), until it succeeds or a Store replaces what is to be restored;
//  4. each check first installs a missing watch, or watches the
//     directories again (one may have been recreated).
func (d *Dir) Run(ctx context.Context) error {
	defer func() {
		if d.w != nil {
			d.w.Close()
		}
	}()
	var retry <-chan time.Time
	var delay time.Duration
	for {
		var events <-chan fsnotify.Event
		var errs <-chan error
		var tick <-chan time.Time // the check every checkEvery, only while unwatched
		var closed bool           // the watch's reader failed: watch anew at this check
		if d.w != nil {
			events, errs = d.w.Events, d.w.Errors
		} else if tick = d.tick; tick == nil {
			tick = time.After(checkEvery)
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if ok && !slices.Contains(d.dirs, ev.Name) && !slices.ContainsFunc(d.files, func(f *Output) bool { return f.path == ev.Name }) {
				continue // neither an output nor its directory
			}
			closed = !ok
		case _, ok := <-errs: // events may have been lost
			closed = !ok
		case <-tick:
		case <-retry:
		}
		if closed {
			d.w.Close()
			d.w = nil
		}
		d.rewatch()
		if err := d.restore(); err != nil {
			delay = min(max(2*delay, firstRetry), checkEvery)
			retry = time.After(delay)
		} else {
			delay, retry = 0, nil
		}
	}
}

// restore is Run's steps 2 and 3; its result is the verdict.
func (d *Dir) restore() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.complete {
		return nil
	}
	lost := d.verify()
	if lost == nil {
		d.setVerdict(nil)
		return nil
	}
	var err error
	for _, f := range d.files {
		if _, err = WriteFile(f.path, f.last, d.mode); err != nil {
			err = fmt.Errorf("restoring the lost %s: %w", f.name, err)
			break
		}
	}
	d.setVerdict(err)
	if d.Restored != nil {
		d.Restored(d.held, err)
	}
	log := d.log.With(slog.String("fingerprint", d.held), slog.String("reason", lost.Error()))
	if err != nil {
		log.Warn("token file lost and could not be written again, retrying", slog.String("error", err.Error()))
	} else {
		log.Warn("token file lost, wrote the stored token again")
	}
	return err
}

// rewatch installs the watch when it is missing, else watches the
// directories again: adding a watch that exists is a cheap no-op.
func (d *Dir) rewatch() {
	if d.w != nil {
		for _, dir := range d.dirs {
			_ = d.w.Add(dir)
		}
		return
	}
	if err := d.Watch(); err != nil {
		d.log.Debug("still cannot watch the token directory", slog.String("error", err.Error()))
		return
	}
	d.log.Info("watching the token directory again", slog.Any("dirs", d.dirs))
}
