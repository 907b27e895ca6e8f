package tokenfile

import (
	"errors"
	"io/fs"
	"strings"
)

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
