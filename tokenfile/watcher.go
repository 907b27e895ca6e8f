package tokenfile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sync/singleflight"

	"github.com/ambient-code/tokend/internal/jwtexp"
)

// A Watcher follows a token file and holds the last good token read from
// it. Create one with New and start it with Run; until Run has read the
// file, the Watcher holds no token.
//
// All methods are safe for concurrent use by any number of goroutines.
// Token and Current never block and never take a lock.
type Watcher struct {
	config        // the options; log names the file
	path   string // absolute
	hooks  hooks
	flight singleflight.Group // one refresh request at a time per rejected token

	cur     atomic.Pointer[Snapshot] // never nil
	ready   chan struct{}            // closed when the first token is stored
	held    chan struct{}            // closed while a token is held; guarded by mu, swapped on withdrawal
	kick    chan struct{}            // asks Run to run the callbacks; buffered, 1
	running atomic.Bool

	mu sync.Mutex // guards reload: the read of the file and the swap of cur

	delivered string // the token callbacks last saw; owned by Run's goroutine
}

// hooks lets tests replace the clockwork under Run. New sets after; other
// zero fields mean the real thing.
type hooks struct {
	newNotify func() (*fsnotify.Watcher, error)    // creates the fsnotify watcher
	watching  func(*fsnotify.Watcher)              // told each rebuilt watcher once its watches are installed
	after     func(time.Duration) <-chan time.Time // the settle timer
	tick      <-chan time.Time                     // the poll ticker
	reloaded  func(Snapshot)                       // told the result of each reload
}

// New returns a Watcher for the token file at path. It does not touch the
// file system: the file and its directory need not exist yet. New fails only
// when path is empty or an option is invalid.
func New(path string, opts ...Option) (*Watcher, error) {
	if path == "" {
		return nil, errors.New("tokenfile: path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("tokenfile: %w", err)
	}
	c := config{poll: DefaultPollInterval, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	var errs []error
	if c.poll <= 0 {
		errs = append(errs, errors.New("tokenfile: poll interval must be positive"))
	}
	if c.now == nil {
		errs = append(errs, errors.New("tokenfile: clock must not be nil"))
	}
	if slices.ContainsFunc(c.onChange, func(fn func(string)) bool { return fn == nil }) {
		errs = append(errs, errors.New("tokenfile: change callback must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.log = cmp.Or(c.log, slog.New(slog.DiscardHandler)).With("path", abs)
	w := &Watcher{config: c, path: abs, hooks: hooks{after: time.After}, ready: make(chan struct{}), kick: make(chan struct{}, 1)}
	w.held = w.ready
	w.cur.Store(&Snapshot{Err: ErrNotReady})
	return w, nil
}

// Path returns the absolute path of the token file.
func (w *Watcher) Path() string { return w.path }

// Token returns the current token, or "" if none was read yet. It is
// wait-free: one atomic load, no lock, no allocation, no system call. Call
// it on every use rather than keeping the result: the token rotates.
func (w *Watcher) Token() string { return w.cur.Load().Token }

// Current returns the current state: the token, its expiry, and whether the
// file still holds it. Like Token, it never blocks.
func (w *Watcher) Current() Snapshot { return *w.cur.Load() }

// Ready returns a channel that is closed once the Watcher first holds a
// token. It stays closed: a token, once read, is kept until a better one
// replaces it, or until the file's writer withdraws it (ErrWithdrawn), after
// which Token is "" until a new token arrives; Wait waits for that one.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Wait blocks until the Watcher holds a token and returns it. If ctx ends
// first, it returns an error that wraps both what was wrong with the file
// at that moment and ctx.Err() (and its cause, when one was given), so
// that errors.Is can tell why no token came: ErrMissing when the file
// never appeared, ErrEmpty or ErrInvalid when it never held a token,
// ErrWithdrawn when its writer withdrew it, ErrNotReady when Run never
// read it; and context.Canceled or context.DeadlineExceeded. Its text
// names the file, says why no token came and what to change. A file that
// does not exist yet is not an error in itself: Wait waits for it to
// appear, so give ctx a deadline. Run must be running (or about to run)
// for Wait to succeed. Wait is safe for concurrent use.
func (w *Watcher) Wait(ctx context.Context) (string, error) {
	for ctx.Err() == nil {
		w.mu.Lock()
		held := w.held
		w.mu.Unlock()
		if tok := w.Token(); tok != "" {
			return tok, nil
		}
		select {
		case <-held: // a token arrived; it may have been withdrawn again
		case <-ctx.Done():
		}
	}
	if tok := w.Token(); tok != "" { // a token arrived as ctx ended
		return tok, nil
	}
	also, after := []error{ctx.Err()}, ctx.Err().Error()
	if cause := context.Cause(ctx); cause != ctx.Err() {
		also = append(also, cause)
		after += ": " + cause.Error()
	}
	return "", &noTokenError{what: "Wait ended without a token (" + after + ")", path: w.path, state: w.Current().Err, also: also}
}

// reloadSettled is reload for a reader outside Run's event handling, which
// cannot know whether a write to the file is in flight: a new token is
// published only once two reads settleDelay apart agree. If the file keeps
// changing for readAttempts rounds, or ctx ends first, the current
// snapshot is returned as it is.
func (w *Watcher) reloadSettled(ctx context.Context) Snapshot {
	for range readAttempts {
		tok, err := readToken(w.path)
		if err != nil || tok == w.Token() {
			return w.reload("")
		}
		select {
		case <-w.hooks.after(settleDelay):
		case <-ctx.Done():
			return w.Current()
		}
		if s := w.reload(tok); s.Token == tok {
			return s
		}
	}
	return w.Current()
}

// reload reads the file and publishes what it found: a new token, the
// recovery of the current one, or the reason the file cannot be used, in
// which case the last good token is kept. When want is not "", a token
// other than want is taken for a write in flight and not published. It
// returns the snapshot now current. reload may be called from any
// goroutine; it never runs the callbacks itself but asks Run to.
func (w *Watcher) reload(want string) Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	tok, err := readToken(w.path)
	if err == nil && want != "" && tok != want {
		err = errUnsettled
	}
	old := w.cur.Load()
	switch {
	case errors.Is(err, errUnsettled):
		// A write is in progress; its own event brings us back.
	case err != nil:
		w.setErr(old, err)
	case tok != old.Token:
		exp, _ := jwtexp.Expiry(tok) // the zero Time when tok carries none
		next := &Snapshot{Token: tok, Expiry: exp, LoadedAt: w.now()}
		w.cur.Store(next)
		if old.Token == "" {
			close(w.held)
		}
		w.log.Debug("tokenfile: token changed", "snapshot", next, "previous", old.Fingerprint())
	case old.Err != nil:
		w.setErr(old, nil)
	}
	s := *w.cur.Load()
	if s.Token != old.Token { // ask Run to run the callbacks
		select {
		case w.kick <- struct{}{}:
		default: // Run has a kick pending already.
		}
	}
	if w.hooks.reloaded != nil {
		w.hooks.reloaded(s)
	}
	return s
}

// setErr records that the file cannot be used (err), or can be again
// (nil). It keeps the last good token, unless the file's writer withdrew
// it. It logs when the problem starts, changes or ends, not on every read.
// w.mu must be held.
func (w *Watcher) setErr(old *Snapshot, err error) {
	if err != nil && old.Err != nil && old.Err.Error() == err.Error() {
		return // logged when it started
	}
	next := *old
	next.Err = err
	if errors.Is(err, ErrWithdrawn) {
		next = Snapshot{Err: err, LoadedAt: w.now()}
		if old.Token != "" {
			w.held = make(chan struct{})
		}
	}
	w.cur.Store(&next)
	switch {
	case err == nil:
		w.log.Info("tokenfile: token file is usable again", "fingerprint", next.Fingerprint())
	case errors.Is(err, ErrWithdrawn):
		w.log.Warn("tokenfile: token withdrawn; requests go without it until a new one arrives",
			"err", err, "previous", old.Fingerprint())
	case old.Token == "" && errors.Is(err, ErrMissing):
		w.log.Info("tokenfile: waiting for the token file to appear")
	case old.Token == "":
		w.log.Warn("tokenfile: token file is not usable yet", "err", err)
	default:
		w.log.Warn("tokenfile: token file is not usable, keeping the last good token",
			"err", err, "fingerprint", old.Fingerprint())
	}
}

// deliver runs the callbacks if the token changed since they last ran. It
// is called only from Run's goroutine, which makes the callbacks sequential
// and ordered.
func (w *Watcher) deliver() {
	tok := w.cur.Load().Token
	if tok == w.delivered { // "" before the first token
		return
	}
	w.delivered = tok
	for _, fn := range w.onChange {
		fn(tok)
	}
}
