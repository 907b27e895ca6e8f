// Package tokendir owns the token directory: the files tokend writes for
// its consumers (the token file and, optionally, a JSON document beside
// it), and nothing else in the directories that hold them. It is the one
// writer of those files (WriteFile, atomic) and the one reader of the
// token file (ReadToken, by the token rule of internal/tokenbytes).
//
// A Dir, for the token the refresher hands it:
//
//  1. writes every output atomically (WriteFile), each only when
//     its content changes, so that watchers see an event only when the
//     token (or, for the JSON document, its expiry) changes;
//  2. verifies, when asked, that every output still holds what it wrote
//     last, and keeps the verdict for readiness (Verified);
//  3. watches the outputs' directories (fsnotify) and signals Attention
//     when one of its files is removed or replaced, or when events may
//     have been lost; when the watch cannot be installed, each Verify
//     tries again, so the refresher's periodic check is the fallback;
//  4. removes the temporary files a crashed run left (CleanTemp), and the
//     outputs themselves on request (Remove).
//
// A lost output is restored by storing the same token again: Store
// rewrites only the outputs that no longer hold their content.
//
// A new output is one file in this package: a type implementing Output,
// passed in Options.Outputs by the daemon.
package tokendir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// Output is one file a Dir writes for each token.
type Output interface {
	// Path is the file's path. Its directory must exist.
	Path() string
	// Render returns the file's content for tok. prev is what the output
	// wrote last, or else what the file holds now (nil when absent or
	// unreadable), so that an output whose content carries more than the
	// token (a time of writing) can keep prev while it still describes
	// tok, and nothing is written. It must not log tok.
	Render(tok exchange.Token, prev []byte, now time.Time) ([]byte, error)
	// Describe names the output in messages, e.g. "token file".
	Describe() string
}

// Options configure a Dir. TokenFile and Mode are required.
type Options struct {
	// TokenFile is the token file's path; it always is the Dir's first
	// output, written last so that the other outputs are in place when
	// a consumer watching the token file reacts.
	TokenFile string
	// Mode is every output's permission bits.
	Mode fs.FileMode
	// Outputs are further outputs (JSON), written before the token file.
	Outputs []Output
	// Logger receives the watch's log lines; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the wall clock; time.Now when nil.
	Now func() time.Time
	// NewWatcher makes the directory watcher; fsnotify.NewWatcher when
	// nil (tests inject failures).
	NewWatcher func() (*fsnotify.Watcher, error)
}

// file is one output and the content it wrote last.
type file struct {
	out  Output
	path string
	last []byte // nil until written or adopted
}

// Dir owns the outputs of one tokend. Store, Verify and Remove are for one
// goroutine (the refresher's); Verified, Attention and Run are safe for
// concurrent use.
type Dir struct {
	files []*file
	mode  fs.FileMode
	log   *slog.Logger
	now   func() time.Time
	watch *watch
	// watching is set by Watch: only a Dir that Run serves retries its
	// watch (init, which never watches, must not leave a watcher behind).
	watching atomic.Bool

	verdict atomic.Pointer[error] // the last verification; nil before any
}

// ErrNotWritten is Verified's answer before the first Store or Verify.
var ErrNotWritten = errors.New("no token written yet")

// New returns a Dir for o. It touches nothing on disk; the watch is
// installed by Watch.
func New(o Options) *Dir {
	d := &Dir{log: o.Logger, now: o.Now, mode: o.Mode.Perm()}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.now == nil {
		d.now = time.Now
	}
	outs := append(append([]Output(nil), o.Outputs...), tokenFile(o.TokenFile))
	var paths []string
	for _, out := range outs {
		d.files = append(d.files, &file{out: out, path: filepath.Clean(out.Path())})
		paths = append(paths, out.Path())
	}
	d.watch = newWatch(paths, o.NewWatcher)
	return d
}

// TokenFile returns the token file's path.
func (d *Dir) TokenFile() string { return d.files[len(d.files)-1].path }

// CleanTemp removes temporary files that a crashed run left beside the
// outputs, and returns how many. Call it before the first Store.
func (d *Dir) CleanTemp() (int, error) {
	n := 0
	var errs []error
	for _, f := range d.files {
		k, err := cleanTemp(f.path)
		n += k
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// Store writes tok to every output whose content differs; changed reports
// whether any file was replaced. Every output is attempted even when one
// fails; the error joins the failures, each naming its file. After a
// success the directories are watched again (one may have been recreated)
// and the verdict is good.
func (d *Dir) Store(tok exchange.Token) (changed bool, err error) {
	now := d.now()
	var errs []error
	for _, f := range d.files {
		prev := f.last
		if prev == nil {
			prev, _ = readFile(f.path, maxRead)
		}
		data, err := f.out.Render(tok, prev, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", f.out.Describe(), f.path, err))
			continue
		}
		c, err := WriteFile(f.path, data, d.mode)
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.last = data
	}
	if err := errors.Join(errs...); err != nil {
		return changed, err
	}
	d.watch.rewatch()
	d.setVerdict(nil)
	return changed, nil
}

// Verify reports whether every output still holds what Store wrote last
// for tok (the refresher's held token); its error names the first output
// that does not, and what became of it, never its content. It first tries
// to install the watch again when it is missing. The result is kept for
// Verified.
func (d *Dir) Verify(tok exchange.Token) error {
	d.retryWatch()
	err := d.verify(tok)
	d.setVerdict(err)
	return err
}

func (d *Dir) verify(tok exchange.Token) error {
	for _, f := range d.files {
		if f.last == nil {
			return fmt.Errorf("%s %s: %w", f.out.Describe(), f.path, ErrNotWritten)
		}
		data, err := readFile(f.path, maxRead)
		if err != nil {
			return fmt.Errorf("%s unreadable: %w", f.out.Describe(), err)
		}
		if string(data) != string(f.last) {
			return fmt.Errorf("%s %s holds %s, not the token written (%s)", f.out.Describe(), f.path, secret.Fingerprint(string(data)), tok.Value.Fingerprint())
		}
	}
	return nil
}

// Verified returns the verdict of the last Verify, or nil after a Store
// that succeeded since; ErrNotWritten before either. It does not touch the
// disk.
func (d *Dir) Verified() error {
	if p := d.verdict.Load(); p != nil {
		return *p
	}
	return ErrNotWritten
}

func (d *Dir) setVerdict(err error) { d.verdict.Store(&err) }

// Attention returns the channel on which the watch asks for a Verify: an
// output or its directory changed, or events may have been lost. Signals
// are coalesced; the channel is never closed.
func (d *Dir) Attention() <-chan struct{} { return d.watch.ch }

// Watch installs the directory watch; call Run too, which closes it. On an
// error (inotify instances or watches exhausted) every Verify tries again.
func (d *Dir) Watch() error {
	d.watching.Store(true)
	return d.watch.install()
}

// Run forwards the watch's events to Attention until ctx ends, then closes
// the watcher and returns nil.
func (d *Dir) Run(ctx context.Context) error { return d.watch.run(ctx) }

func (d *Dir) retryWatch() {
	if !d.watching.Load() || d.watch.installed() {
		return
	}
	if err := d.watch.install(); err != nil {
		d.log.Debug("still cannot watch the token directory", slog.String("error", err.Error()))
		return
	}
	d.log.Info("watching the token directory again", slog.Any("dirs", d.watch.dirs))
}

// Remove removes every output (--remove-on-exit); a missing file is no
// error. The error joins the failures, each naming its file.
func (d *Dir) Remove() error {
	var errs []error
	for _, f := range d.files {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
