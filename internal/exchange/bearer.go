package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// ErrCredential is wrapped by errors about the bearer credential file:
// missing, unreadable, empty, too long, or holding bytes a header cannot
// carry. The error names the file, never its content. Retryable reports it
// as retryable, since a mounted secret may not be in place yet.
var ErrCredential = errors.New("exchange: bearer credential unavailable")

// Bearer sends a static credential as it is: GET with "Authorization:
// Bearer <credential>" and no body, the answer a JSON object with "token"
// and "expires_at". It is what the successor control plane serves today
// (protocol.md section 3), with a control-plane-signed capability as the
// credential. Each Exchange takes these steps within one deadline of
// Timeout:
//
//  1. Read the credential: from CredentialFile when set, re-read every
//     time (its owner may rotate it), else Credential.
//  2. GET URL with the credential; redirects are never followed.
//  3. Read the answer through a 64 KiB limit and validate the token; its
//     CredentialExpiry is the credential's exp claim (CredentialExpiry).
//  4. On a 401, read the credential again: when its file now holds another
//     one, send that once (step 2); otherwise the 401 answered the
//     freshest credential there is, and is confirmed (a refusal, see
//     Classify).
//  5. When the exchange failed and the credential's exp claim has passed
//     on tokend's clock, the error wraps ErrCredentialExpired.
//
// Bearer does not judge the URL's scheme: the configuration applies the
// rule for plain http. A Bearer is safe for concurrent use once
// constructed; its fields must not change afterwards.
type Bearer struct {
	// URL is the token endpoint, e.g. https://ambient-control-plane.ns.svc:8443/token.
	URL string
	// CredentialFile, when not empty, holds the credential (the token
	// file rule: the credential, then optionally line feeds).
	CredentialFile string
	// Credential is sent when CredentialFile is empty.
	Credential secret.String
	// CredentialSource names the setting the credential came from, for
	// hints, e.g. "AMBIENT_RUNNER_BOOTSTRAP_TOKEN"; when empty,
	// TOKEND_CREDENTIAL_FILE or TOKEND_CREDENTIAL.
	CredentialSource string
	// Client sends the request; use NewHTTPClient.
	Client *http.Client
	// UserAgent is sent as the User-Agent header.
	UserAgent string
	// Timeout bounds one exchange; RequestTimeout when zero.
	Timeout time.Duration
	// Now returns the wall time used to judge expiry; time.Now when nil.
	Now func() time.Time
}

// Exchange implements Exchanger. Besides the errors Exchanger lists, it
// returns errors wrapping ErrCredential and ErrCredentialExpired.
func (e *Bearer) Exchange(ctx context.Context) (Token, error) {
	return exchangeOnce(ctx, e.Timeout, e.credential, secret.String.Equal, e.send, "the credential")
}

// credential reads the credential from its file, or returns Credential.
func (e *Bearer) credential() (secret.String, error) {
	if e.CredentialFile == "" {
		return e.Credential, nil
	}
	return e.readCredential()
}

// send sends cred once (steps 2, 3 and 5).
func (e *Bearer) send(ctx context.Context, cred secret.String) (Token, error) {
	client := *e.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req := bearerGet{url: e.URL, credential: cred.Reveal(), userAgent: e.UserAgent, hint: e.hint}
	tok, err := req.do(ctx, &client, now(e.Now))
	exp, _ := CredentialExpiry(cred.Reveal())
	if err != nil {
		// Judged once the answer is in: the issuer judged it then.
		if ee := credentialExpired(exp, now(e.Now), e.source(), err); ee != nil {
			return Token{}, ee
		}
		return Token{}, err
	}
	if !exp.IsZero() {
		tok.CredentialExpiry = exp.Add(-tok.Skew) // onto tokend's clock, as Expiry
	}
	return tok, nil
}

func (e *Bearer) source() string {
	switch {
	case e.CredentialSource != "":
		return e.CredentialSource
	case e.CredentialFile != "":
		return "TOKEND_CREDENTIAL_FILE (" + e.CredentialFile + ")"
	}
	return "TOKEND_CREDENTIAL"
}

// CheckCredential returns why v cannot be a Bearer's Credential: an HTTP
// header carries it, so it follows the rule for a token's bytes (package
// tokenbytes). The error is a phrase for the caller to prefix with the
// setting's name; it names the offset of a bad byte, never the value.
func CheckCredential(v string) error {
	var be *tokenbytes.ByteError
	if err := tokenbytes.Check(v); errors.As(err, &be) {
		return fmt.Errorf("has a whitespace, control or non-ASCII character at offset %d (it is sent as an HTTP header)", be.Offset)
	} else if err != nil {
		return fmt.Errorf("is %w (it is sent as an HTTP header)", err)
	}
	return nil
}

func (e *Bearer) hint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "credential rejected: " + e.source() + " is not this run's capability, or it expired or was not signed by this control plane"
	case http.StatusForbidden:
		return "runner access revoked: the session was stopped or restarted, and this run's capability obtains no more tokens"
	case http.StatusMethodNotAllowed:
		return "the endpoint does not take GET; check AMBIENT_CP_TOKEN_URL"
	}
	return commonHint(code)
}
