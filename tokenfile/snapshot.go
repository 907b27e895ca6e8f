package tokenfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
)

// Errors that describe the token file. They appear in Snapshot.Err, wrapped
// with detail; test for them with errors.Is. None of them carries token
// bytes.
var (
	// ErrNotReady is the state before the file was first read, and the error
	// of a request the Transport refuses because no token was ever read.
	ErrNotReady = errors.New("tokenfile: no token read yet")

	// ErrMissing means the token file does not exist (or a directory or
	// symlink on its path does not). It also matches fs.ErrNotExist.
	ErrMissing = errors.New("tokenfile: token file does not exist")

	// ErrEmpty means the token file is empty, or holds only line feeds.
	ErrEmpty = errors.New("tokenfile: token file is empty")

	// ErrInvalid means the file breaks the rule in the package doc ("The
	// file"): it holds a whitespace, control or non-ASCII byte other than
	// trailing line feeds, it is longer than MaxTokenLen bytes, or it is not
	// a regular file. The wrapping error names the problem and a
	// byte offset, never the content.
	ErrInvalid = errors.New("tokenfile: token file content is invalid")

	// ErrWithdrawn means the file holds a withdrawal record (see "Withdrawal"
	// in the package doc): its writer has no token to offer, because the
	// issuer refused the credential. The wrapping error carries the
	// record's reason. Unlike the other errors, it is not a fault of the
	// file: the last token is dropped, not kept.
	ErrWithdrawn = errors.New("tokenfile: token withdrawn by its writer")

	// ErrRunning is returned by Run when the Watcher is already running.
	ErrRunning = errors.New("tokenfile: watcher is already running")
)

// A Snapshot is the state of a Watcher at one moment: the token it serves
// and what it knows about the file. A Snapshot is an immutable value; it
// is safe to copy and to share between goroutines.
//
// Formatting a Snapshot with any fmt verb, or logging it with log/slog,
// shows the token's fingerprint, never the token.
type Snapshot struct {
	// Token is the last good token read from the file: non-empty, printable
	// ASCII without whitespace. It is "" until the first token is read, and
	// while the file holds a withdrawal record (Err wraps ErrWithdrawn).
	Token string

	// Expiry is the "exp" claim when Token is a JWT that carries one, decoded
	// without verifying the signature; otherwise it is the zero Time.
	Expiry time.Time

	// LoadedAt is when Token was read, by the Watcher's clock.
	LoadedAt time.Time

	// Err is nil when the file held Token the last time it was read.
	// Otherwise it says why the file's current content is not served
	// (ErrNotReady, ErrMissing, ErrEmpty, ErrInvalid, ErrWithdrawn, or an
	// I/O error), and Token, when not empty, is the last good token kept
	// in its place.
	Err error
}

// HasToken reports whether the snapshot holds a token. For a Watcher's
// current snapshot it is true exactly when Watcher.Ready is closed.
func (s Snapshot) HasToken() bool { return s.Token != "" }

// Stale reports whether the file no longer holds the token being served:
// it went missing, empty, invalid or unreadable after Token was read.
func (s Snapshot) Stale() bool { return s.Token != "" && s.Err != nil }

// Expired reports whether the token carries an expiry and it is not after
// now. A token without a known expiry never reports expired; whether to use
// an expired token is the caller's choice.
func (s Snapshot) Expired(now time.Time) bool {
	return !s.Expiry.IsZero() && !now.Before(s.Expiry)
}

// Fingerprint returns a short, stable, non-reversible name for the token,
// suitable for logs: the first 12 hex digits of its SHA-256, or "none" when
// there is no token.
func (s Snapshot) Fingerprint() string { return secret.Fingerprint(s.Token) }

// Format implements fmt.Formatter so that every verb prints the fingerprint
// in place of the token, and what LogValue shows.
func (s Snapshot) Format(f fmt.State, _ rune) {
	sep := "tokenfile.Snapshot{"
	for _, a := range s.LogValue().Group() {
		v := a.Value.Any()
		if t, ok := v.(time.Time); ok {
			v = t.Format(time.RFC3339)
		}
		fmt.Fprintf(f, "%s%s: %v", sep, a.Key, v)
		sep = ", "
	}
	fmt.Fprint(f, "}")
}

// LogValue implements slog.LogValuer: a logged Snapshot shows the
// fingerprint in place of the token.
func (s Snapshot) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("fingerprint", s.Fingerprint())}
	if !s.Expiry.IsZero() {
		attrs = append(attrs, slog.Time("expiry", s.Expiry))
	}
	if !s.LoadedAt.IsZero() {
		attrs = append(attrs, slog.Time("loaded", s.LoadedAt))
	}
	if s.Err != nil {
		attrs = append(attrs, slog.String("err", s.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// noTokenError is the error of a Wait that ended without a token, and of a
// request the Transport did not send because it holds none. Its text says,
// once, what failed, why (the state of the file) and what to change; for
// errors.Is it matches the state (ErrMissing, ErrEmpty, ErrInvalid,
// ErrWithdrawn, ErrNotReady, or an I/O error) and the reasons given
// in also.
type noTokenError struct {
	what  string  // what failed: "Wait ended without a token (context canceled)", "GET URL not sent without a token"
	path  string  // the token file
	state error   // Snapshot.Err when it failed
	also  []error // further reasons: ErrNotReady, ctx.Err() and its cause
}

func (e *noTokenError) Error() string {
	return "tokenfile: " + e.what + ": " + explain(e.path, e.state)
}

func (e *noTokenError) Unwrap() []error { return append([]error{e.state}, e.also...) }

// explain says in one sentence why the file at path gives no token, as
// state reports it, and what to change. It never quotes the file.
func explain(path string, state error) string {
	if state == nil {
		return "the token was dropped as the request was made; send it again"
	}
	// state's own part: the error it wraps beside its sentinel ("%w: %w"),
	// else its text without the sentinel's or the package's prefix.
	d := strings.TrimPrefix(state.Error(), ErrWithdrawn.Error()+": ")
	d = strings.TrimPrefix(strings.TrimPrefix(d, ErrInvalid.Error()+": "), "tokenfile: ")
	if m, ok := state.(interface{ Unwrap() []error }); ok {
		d = m.Unwrap()[1].Error()
	}
	switch {
	case errors.Is(state, ErrNotReady):
		return "the Watcher has not read " + path + " yet. Fix: start it with go w.Run(ctx) before waiting or sending requests"
	case errors.Is(state, ErrMissing):
		return path + " does not exist. Fix: check that tokend writes this path (its --token-file, TOKEND_TOKEN_FILE) and that the directory is mounted in this container"
	case errors.Is(state, ErrEmpty):
		return path + " is empty. Fix: the file must hold the token; tokend never leaves it empty, so check what else writes it"
	case errors.Is(state, ErrWithdrawn):
		return "tokend withdrew the token (" + d + "). Fix: nothing here: the control plane refused the session's credential, so its access has ended"
	case errors.Is(state, ErrInvalid):
		return path + " does not hold a token (" + d + "). Fix: point the Watcher at the token file itself, which holds only the token (printable ASCII) and optionally line feeds"
	case errors.Is(state, fs.ErrPermission):
		return "cannot read " + path + " (" + d + "). Fix: give this container's user read access, through the file mode (tokend's --file-mode) or the pod's fsGroup"
	}
	return "cannot read " + path + " (" + d + ")"
}
