package exchange

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/jwtexp"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// ErrCredential is wrapped by errors about CredentialFile: missing,
// unreadable, empty, too long, or holding bytes a header cannot carry; they
// name the file, never its content. Classify calls it transient (a mounted
// secret may not be in place yet).
var ErrCredential = errors.New("exchange: bearer credential unavailable")

// Bearer sends a static credential as it is: GET with "Authorization:
// Bearer <credential>" and no body, answered with JSON "token" and
// "expires_at", as the successor control plane serves it with a run
// capability as the credential (protocol.md section 3). Each Exchange,
// within one deadline of RequestTimeout:
//
//  1. reads the credential: CredentialFile, re-read every time (its owner
//     may rotate it), else Credential;
//  2. sends it, following no redirect, and validates the answer (at most
//     64 KiB); the token's CredentialExpiry is the credential's exp claim;
//  3. on a 401, reads the credential again and sends it once more if it
//     changed; otherwise the 401 is confirmed (Classify);
//  4. when it failed after the exp claim passed on tokend's clock,
//     returns an error wrapping ErrCredentialExpired.
//
// Bearer does not judge the URL's scheme (the configuration does). It is
// safe for concurrent use; its fields must not change after construction.
type Bearer struct {
	Endpoint
	// CredentialFile, when not empty, holds the credential (then
	// optionally line feeds, as a token file).
	CredentialFile string
	// Credential is sent when CredentialFile is empty.
	Credential secret.String
	// CredentialSource names the credential's setting for hints, e.g.
	// "AMBIENT_RUNNER_BOOTSTRAP_TOKEN"; "the credential" when empty.
	CredentialSource string
}

// Exchange implements Exchanger. Besides the errors Exchanger lists, it
// returns errors wrapping ErrCredential and ErrCredentialExpired.
func (e *Bearer) Exchange(ctx context.Context) (Token, error) {
	return exchangeOnce(ctx, e.readCredential, secret.String.Equal, e.send, "the credential")
}

// send sends cred once (steps 2 and 4).
func (e *Bearer) send(ctx context.Context, cred secret.String) (Token, error) {
	tok, err := get(ctx, e.Client, e.URL, cred.Reveal(), now(e.Now), e.hint)
	exp, _ := jwtexp.Expiry(cred.Reveal()) // a run capability is shaped as a JWT
	// Judged once the answer is in: the issuer judged it then.
	if t := now(e.Now); err != nil && !exp.IsZero() && !t.Before(exp) {
		return Token{}, fmt.Errorf("%w at %s (its exp claim): a new run gets a new one, or replace %s (the last answer: %w)",
			ErrCredentialExpired, exp.UTC().Format(time.RFC3339), cmp.Or(e.CredentialSource, "the credential"), err)
	}
	if err == nil && !exp.IsZero() {
		tok.CredentialExpiry = exp.Add(-tok.Skew) // onto tokend's clock, as Expiry
	}
	return tok, err
}

// CheckCredential returns why v, sent as an HTTP header, cannot be a
// Bearer's Credential by package tokenbytes' rule: a phrase to prefix with
// the setting's name, naming a bad byte's offset, never the value.
func CheckCredential(v string) error {
	if err := tokenbytes.Check(v); errors.Is(err, tokenbytes.ErrByte) {
		return fmt.Errorf("has %w (it is sent as an HTTP header)", err)
	} else if err != nil {
		return fmt.Errorf("is %w (it is sent as an HTTP header)", err)
	}
	return nil
}

func (e *Bearer) hint(code int) string {
	return hint(code, "credential rejected: "+cmp.Or(e.CredentialSource, "the credential")+" is not this run's capability, or it expired or was not signed by this control plane",
		"runner access revoked: the session was stopped or restarted, and this run's capability obtains no more tokens")
}

// ErrCredentialExpired is wrapped by the error of a bearer exchange that
// failed after the credential's own exp claim had passed (a 200 is a
// success whatever tokend's clock says; an issuer out of reach cannot
// overrule the claim). Classify calls it a refusal.
var ErrCredentialExpired = errors.New("exchange: the bearer credential has expired")

// readCredential returns Credential, or else reads CredentialFile (step 1)
// by the token file rule (tokenbytes.FromFile). Errors wrap ErrCredential
// and name the path and the cause, never the content.
func (e *Bearer) readCredential() (secret.String, error) {
	if e.CredentialFile == "" {
		return e.Credential, nil
	}
	const absent = "is the secret that holds it mounted?"
	path := e.CredentialFile
	h, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return secret.String{}, fmt.Errorf("%w: %s: %w (%s)", ErrCredential, path, cause(err), absent)
	case errors.Is(err, fs.ErrPermission):
		who := fmt.Sprintf("; tokend runs as uid %d, gid %d", os.Getuid(), os.Getgid())
		if fi, serr := os.Stat(path); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				who += fmt.Sprintf(", and the file is owned by uid %d, gid %d with mode %04o", st.Uid, st.Gid, fi.Mode().Perm())
			}
		}
		return secret.String{}, fmt.Errorf("%w: %s exists but tokend may not read it: %w%s: %s", ErrCredential, path, cause(err), who,
			"make the file readable by the user tokend runs as (the pod's securityContext.fsGroup, or the secret volume's defaultMode)")
	case err != nil:
		return secret.String{}, fmt.Errorf("%w: %s: %w", ErrCredential, path, cause(err))
	}
	defer h.Close()
	data, err := io.ReadAll(io.LimitReader(h, tokenbytes.MaxLen+1))
	if err != nil {
		return secret.String{}, fmt.Errorf("%w: reading %s: %w", ErrCredential, path, cause(err))
	}
	v, err := tokenbytes.FromFile(data)
	switch {
	case errors.Is(err, tokenbytes.ErrEmpty):
		return secret.String{}, fmt.Errorf("%w: %s is empty (%s)", ErrCredential, path, absent)
	case errors.Is(err, tokenbytes.ErrTooLong):
		return secret.String{}, fmt.Errorf("%w: %s is %w", ErrCredential, path, err)
	case err != nil:
		return secret.String{}, fmt.Errorf("%w: %s has %w", ErrCredential, path, err)
	}
	return secret.New(v), nil
}
