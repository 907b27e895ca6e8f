// Package tokenfile follows a bearer-token file and holds the current token
// for the HTTP clients of the process.
//
// # The file
//
// This is the one rule for what a token file may hold; the README's shell
// and Python readers follow it too. The file holds the token, printable
// ASCII (bytes 0x21 to 0x7E, so no spaces, tabs or carriage returns),
// optionally followed by line feeds, which are not part of the token; it
// is at most MaxTokenLen bytes in all. A file that breaks the rule is not
// a token (ErrEmpty, ErrInvalid) and the last good token is kept.
//
// # Withdrawal
//
// A writer that has no token to offer says so by writing a withdrawal
// record in its place, one line that starts with "# token withdrawn" and
// says why, e.g.
//
//	# token withdrawn: the control plane refused the credential (403)
//
// tokend writes it when the control plane definitively refuses the
// credential, because a revoked session must stop using its token at once.
// The record holds spaces, so a reader that follows the token rule sees no
// token. On the event that brings it, the Watcher drops the token: Token
// returns "", Current().Err wraps ErrWithdrawn, the WithOnChange callbacks
// get "", the Transport sends nothing and fails with ErrWithdrawn, and Wait
// waits for a new token. The next valid token restores everything.
//
// Any writer will do (tokend renames a complete temporary file over the
// token): a rename into place, a truncate-and-write in place, a delete and
// recreate, the directory removed and recreated, the kubelet's
// AtomicWriter layout (the file a symlink through a "..data" symlink that
// is swapped to publish a new version), and any other symlink on the path
// swapped the same way, such as "current -> v2" renamed into place.
//
// # Use
//
// Create a Watcher with New, run it with Run on a goroutine that lives as
// long as the token is needed, wait for the first token if the program
// cannot start without one, and read the token where it is used:
//
//	w, err := tokenfile.New("/var/run/ambient/token")
//	if err != nil {
//		return err
//	}
//	go w.Run(ctx)
//	wctx, cancel := context.WithTimeout(ctx, time.Minute)
//	_, err = w.Wait(wctx) // the first token; the error says why none came, and the fix
//	cancel()
//	if err != nil {
//		return err
//	}
//	client := &http.Client{Transport: w.Transport(nil)}
//
// Token costs one atomic load; Current adds the expiry and the file's state.
// WithOnChange feeds an existing holder, such as an API client's SetToken.
// Transport sends the token only to its origins, and retries a 401 once
// with a re-read token.
//
// # golang.org/x/oauth2
//
// The package example "TokenSource" adapts a Watcher to an
// oauth2.TokenSource (an example, so consumers need not resolve oauth2).
// Give it to oauth2.Transport directly: oauth2.NewClient and
// ReuseTokenSource keep a token until its expiry and would miss rotations.
// Where nothing requires a TokenSource, prefer Transport, which sends the
// token only to the origins it is for.
//
// # Guarantees
//
//   - A token, once read, is kept until a valid one replaces it or its
//     writer withdraws it: a file that goes missing, empty, invalid or
//     unreadable never blanks the token. The problem is reported in
//     Snapshot.Err and logged once.
//   - Readers see whole tokens only. A token is published as one immutable
//     value; a read during which the file changed is discarded, and an
//     in-place write, or a new token no event announced (found by a poll
//     or a Transport re-read), is read once the file has been left alone
//     for a moment (20 ms).
//   - A rotation is seen by its file event, not by the next poll, however
//     the path leads to the file: symlinks on it are watched where they
//     are swapped.
//   - The token goes only to the origins it is for, never over plain http
//     to a host it went to over https, redirects and retries included.
//   - The Watcher does not stop while its context lives. The file is polled
//     every DefaultPollInterval (see WithPollInterval) whatever the events
//     say, and a watch that breaks is rebuilt.
//   - Tokens never appear in logs, errors or formatted values; a
//     fingerprint (Snapshot.Fingerprint) names them instead.
//
// # Limits
//
// A writer that pauses for longer than the settle delay (20 ms) while
// writing the file in place can be read half way, if what it wrote so far
// looks like a token: rename a complete file into place, as tokend does.
// The expiry is read without verifying the token's signature; it is a hint
// for refreshing, not a security check.
package tokenfile
