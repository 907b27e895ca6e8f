// Package tokendir owns the token directory: the files tokend writes for
// its consumers (the token file and, optionally, a JSON document beside
// it), and nothing else there. It is their one writer (WriteFile, atomic)
// and the one reader of the token file (ReadToken, by the token rule of
// internal/tokenbytes). A Dir, for the token the refresher hands it:
//
//  1. writes every output atomically, each only when its content changes,
//     so that watchers see an event only when the token (or, for the JSON
//     document, its expiry) changes;
//  2. while Run runs, brings back a removed or replaced output from the
//     bytes it wrote last, and keeps the verdict for readiness (Verified);
//  3. removes the temporary files a crashed run left (CleanTemp), and the
//     outputs on request (Remove);
//  4. after a definitive refusal of the credential, replaces the token by
//     a record that there is none and why (Withdraw), which step 2 keeps
//     in place until the next Store.
//
// A new output is one file in this package: a function returning an
// Output, passed in Options.Outputs.
package tokendir

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/fswatch"
	"github.com/ambient-code/tokend/internal/secret"
)

// Output is one file a Dir writes for each token, or for its withdrawal:
// the token file every Dir has, or JSON's.
type Output struct {
	path string // its directory must exist
	name string // names it in messages, e.g. "token file"
	// render returns the content for tok, and must not log tok. prev is
	// what the output wrote last, else what the file holds (nil when absent
	// or unreadable): content with more than the token (a time of writing)
	// keeps prev while it still describes tok.
	render func(tok exchange.Token, prev []byte, now time.Time) []byte
	// withdraw is render for the token's withdrawal: no token, and reason
	// (which holds no secret).
	withdraw func(reason string, prev []byte, now time.Time) []byte
	last     []byte // what a Dir wrote last, in its own copy; nil until written
}

// Options configure a Dir. TokenFile and Mode are required.
type Options struct {
	// TokenFile is the token file's path: always an output, written last
	// so that the others are in place when its watchers react.
	TokenFile string
	// Mode is every output's permission bits.
	Mode fs.FileMode
	// Outputs are further outputs (JSON), written before the token file.
	Outputs []Output
	// Logger receives Run's log lines; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the wall clock; time.Now when nil.
	Now func() time.Time
}

// Dir owns the outputs of one tokend. Store, Verify, Verified, Remove and
// Run are safe for concurrent use (Store is the refresher's, Run restores
// on its own goroutine); call Watch, CleanTemp and set Restored before Run
// starts.
type Dir struct {
	// Restored, when set, is called after each attempt of Run to write a
	// lost output again, before the attempt is logged, with the stored
	// token's fingerprint ("withdrawn" after a Withdraw); err is nil once
	// every output is back. It runs while the Dir is locked: it must not
	// block, nor call Store or Verify.
	Restored func(fingerprint string, err error)

	mode       fs.FileMode
	log        *slog.Logger
	now        func() time.Time
	newWatcher func() (*fsnotify.Watcher, error) // tests: replaces fsnotify.NewWatcher
	dirs       []string                          // the outputs' directories, each once
	w          *fswatch.Watcher                  // nil while not watching; Watch and Run only
	tick       <-chan time.Time                  // tests: replaces Run's minute check while unwatched

	mu        sync.Mutex // guards files' last, held, withdrawn, complete
	files     []*Output
	held      string // the fingerprint of the token stored last
	withdrawn error  // the withdrawal written last, nil after a Store
	complete  bool   // the last Store or Withdraw wrote every output

	verdict atomic.Pointer[error] // the last verification
}

// ErrNotWritten is Verified's answer before the first Store or Verify.
var ErrNotWritten = errors.New("no token written yet")

// New returns a Dir for o. It touches nothing on disk.
func New(o Options) *Dir {
	d := &Dir{mode: o.Mode.Perm(), log: cmp.Or(o.Logger, slog.Default()), now: o.Now}
	if d.now == nil {
		d.now = time.Now
	}
	d.setVerdict(ErrNotWritten)
	for _, out := range append(slices.Clone(o.Outputs), tokenFile(o.TokenFile)) {
		out.path = filepath.Clean(out.path)
		d.files = append(d.files, &out)
		if !slices.Contains(d.dirs, filepath.Dir(out.path)) {
			d.dirs = append(d.dirs, filepath.Dir(out.path))
		}
	}
	return d
}

// TokenFile returns the token file's path.
func (d *Dir) TokenFile() string { return d.files[len(d.files)-1].path }

// CleanTemp removes temporary files that a crashed run left beside the
// outputs, and returns how many. Call it before the first Store.
func (d *Dir) CleanTemp() (n int, _ error) {
	var errs []error
	for _, f := range d.files {
		dir, prefix := filepath.Dir(f.path), "."+filepath.Base(f.path)+tempInfix
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", dir, cause(err)))
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			} else {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// Store writes tok to every output whose content differs; changed reports
// whether any file was replaced. Every output is attempted even when one
// fails; the error joins the failures, each naming its file, and Run
// restores nothing until a Store succeeds again (the refresher stores the
// token again itself). After a success the verdict is good.
func (d *Dir) Store(tok exchange.Token) (changed bool, err error) {
	return d.write(tok.Value.Fingerprint(), nil, func(f *Output, prev []byte, now time.Time) []byte {
		return f.render(tok, prev, now)
	})
}

// Withdraw replaces the token in every output by its withdrawal for
// reason (no secret): the token file then holds
// tokenbytes.Withdrawal(reason), the JSON document its withdrawn form. An
// output neither written by this Dir nor on disk stays absent, so that a
// consumer waiting for the first token keeps waiting. It writes as Store
// does, Run restores the withdrawal as a token, and the verdict wraps
// ErrWithdrawn until the next Store.
func (d *Dir) Withdraw(reason string) (changed bool, err error) {
	return d.write("withdrawn", fmt.Errorf("%w: %s", ErrWithdrawn, reason), func(f *Output, prev []byte, now time.Time) []byte {
		if f.last == nil {
			if _, err := os.Lstat(f.path); errors.Is(err, fs.ErrNotExist) {
				return nil // nothing to withdraw
			}
		}
		return f.withdraw(reason, prev, now)
	})
}

// ErrWithdrawn is wrapped by Verified's answer after a Withdraw, until the
// next Store.
var ErrWithdrawn = errors.New("token withdrawn")

// write holds the token of fingerprint held, or withdrawn (nil for a
// token), and renders and writes every output but those render returns
// nil for. Run restores only what a write wrote to every output.
func (d *Dir) write(held string, withdrawn error, render func(f *Output, prev []byte, now time.Time) []byte) (changed bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held, d.withdrawn = held, withdrawn
	now := d.now()
	var errs []error
	for _, f := range d.files {
		prev := f.last
		if prev == nil {
			prev, _ = readFile(f.path, maxRead)
		}
		data := render(f, prev, now)
		if data == nil {
			continue
		}
		c, err := WriteFile(f.path, data, d.mode)
		changed = changed || c
		if err != nil {
			errs = append(errs, err)
		} else {
			f.last = data
		}
	}
	err = errors.Join(errs...)
	d.complete = err == nil && !slices.ContainsFunc(d.files, func(f *Output) bool { return f.last == nil })
	if err == nil {
		d.setVerdict(nil)
	}
	return changed, err
}

// Verify reports whether every output still holds what Store wrote last;
// its error names the first output that does not, and what became of it,
// never its content. The result is kept for Verified.
func (d *Dir) Verify() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.verify()
	d.setVerdict(err)
	return err
}

// verify is Verify without the verdict; d.mu is held.
func (d *Dir) verify() error {
	for _, f := range d.files {
		if f.last == nil {
			return fmt.Errorf("%s %s: %w", f.name, f.path, ErrNotWritten)
		}
		data, err := readFile(f.path, maxRead)
		if err != nil {
			return fmt.Errorf("%s unreadable: %w", f.name, err)
		}
		if string(data) != string(f.last) {
			return fmt.Errorf("%s %s holds %s, not the token written (%s)", f.name, f.path, secret.Fingerprint(string(data)), d.held)
		}
	}
	return nil
}

// Verified returns the verdict of the last verification (Verify, or Run's
// check), or nil after a Store that succeeded since; ErrNotWritten before
// either. It does not touch the disk.
func (d *Dir) Verified() error { return *d.verdict.Load() }

// setVerdict keeps err, or the withdrawal when err is nil and the token is
// withdrawn; d.mu is held.
func (d *Dir) setVerdict(err error) {
	err = cmp.Or(err, d.withdrawn)
	d.verdict.Store(&err)
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
