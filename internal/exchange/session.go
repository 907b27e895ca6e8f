package exchange

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/ambient-code/tokend/internal/secret"
)

// RequestTimeout bounds one exchange of either mode, from dial to the last
// byte of the body.
const RequestTimeout = 10 * time.Second

// Endpoint is the part of Bearer and EncryptedSession that says where and
// how an exchange is sent.
type Endpoint struct {
	// URL is the token endpoint, e.g. https://ambient-control-plane.ns.svc:8443/token.
	URL string
	// Client sends the request; use NewHTTPClient.
	Client *http.Client
	// Now returns the wall time used to judge expiry; time.Now when nil.
	Now func() time.Time
}

// EncryptedSession is the control plane's deployed exchange: a GET whose
// bearer credential is the session id encrypted to the control plane's RSA
// key (RSA-OAEP, SHA-256, empty label), fresh at every request, in padded
// standard base64. Each Exchange, within one deadline of RequestTimeout:
//
//  1. takes the key: PublicKeyFile, read at every exchange (a mounted
//     Secret follows the control plane's key rotation), else PublicKey;
//  2. sends the session id encrypted to it;
//  3. on a 401, reads PublicKeyFile again and sends once more if the key
//     changed. A 401 that survives this, or answers PublicKey (which
//     cannot change), is confirmed: a refusal (Classify).
//
// It is safe for concurrent use; its fields must not change after
// construction.
type EncryptedSession struct {
	Endpoint
	// PublicKey is the control plane's key, used when PublicKeyFile is empty.
	PublicKey *rsa.PublicKey
	// PublicKeyFile, when not empty, holds the key as ParsePublicKey reads it.
	PublicKeyFile string
	// SessionID is the plaintext that is encrypted; it is a credential.
	SessionID secret.String
}

// ErrPublicKey is wrapped by errors about PublicKeyFile: missing,
// unreadable, or holding no usable key; they name the file, never its
// content. Classify calls it transient (a mounted file may be mid-swap).
var ErrPublicKey = errors.New("exchange: public key unavailable")

// Exchange implements Exchanger. Besides the errors Exchanger lists, it
// returns errors wrapping ErrPublicKey.
func (e *EncryptedSession) Exchange(ctx context.Context) (Token, error) {
	return exchangeOnce(ctx, e.key, func(a, b *rsa.PublicKey) bool { return a.Equal(b) }, e.send, "the key file")
}

// exchangeOnce is one exchange of either mode within RequestTimeout: read,
// send, and on a 401 read again; a changed credential is sent once more, and
// a 401 on the freshest one is confirmed (Classify). what names the source.
func exchangeOnce[C any](ctx context.Context, read func() (C, error), same func(a, b C) bool,
	send func(context.Context, C) (Token, error), what string) (Token, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	cred, err := read()
	if err != nil {
		return Token{}, err
	}
	tok, err := send(ctx, cred)
	if StatusCode(err) != http.StatusUnauthorized {
		return tok, err
	}
	again, rerr := read()
	if rerr != nil {
		return Token{}, fmt.Errorf("%w (and reading %s again failed: %w)", err, what, rerr)
	}
	if !same(again, cred) {
		if tok, err = send(ctx, again); StatusCode(err) != http.StatusUnauthorized {
			return tok, err
		}
	}
	var se *StatusError
	errors.As(err, &se) // found: StatusCode(err) is 401
	se.Confirmed = true
	return Token{}, err
}

// key is step 1.
func (e *EncryptedSession) key() (*rsa.PublicKey, error) {
	if e.PublicKeyFile == "" {
		return e.PublicKey, nil
	}
	key, err := ReadPublicKeyFile(e.PublicKeyFile)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrPublicKey, err)
	}
	return key, err
}

// send is step 2.
func (e *EncryptedSession) send(ctx context.Context, key *rsa.PublicKey) (Token, error) {
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, key, []byte(e.SessionID.Reveal()), nil)
	if err != nil {
		// The error from EncryptOAEP names sizes, never the plaintext.
		return Token{}, fmt.Errorf("exchange: encrypting the session id: %w", err)
	}
	return get(ctx, e.Client, e.URL, base64.StdEncoding.EncodeToString(ct), now(e.Now), e.hint)
}

// CheckSessionID returns why id cannot be the session id under key: the
// control plane refuses one under 8 characters or with whitespace, and
// RSA-OAEP with SHA-256 encrypts at most key.Size()-66 bytes (unchecked
// for a nil key). The error, a phrase to prefix with the setting's name,
// never quotes id.
func CheckSessionID(id string, key *rsa.PublicKey) error {
	switch {
	case len(id) < 8:
		return errors.New("must be at least 8 characters (the control plane rejects shorter ids)")
	case strings.IndexFunc(id, unicode.IsSpace) >= 0:
		return errors.New("must not contain whitespace (the control plane rejects it)")
	case key != nil && len(id) > key.Size()-2*sha256.Size-2:
		return fmt.Errorf("is %d bytes, more than the %d a %d-bit key can encrypt", len(id), key.Size()-2*sha256.Size-2, key.N.BitLen())
	}
	return nil
}

func (e *EncryptedSession) hint(code int) string {
	on401 := "wrong public key: AMBIENT_CP_TOKEN_PUBLIC_KEY is not the control plane's current key " +
		"(a key given by variable is read once; mount it as a file with --public-key-file to follow a rotation)"
	if e.PublicKeyFile != "" {
		on401 = "wrong public key: the key in TOKEND_PUBLIC_KEY_FILE (" + e.PublicKeyFile +
			"), read again after this answer, is not the control plane's current key"
	}
	return hint(code, on401, "session id rejected: the session was stopped or is unknown (check SESSION_ID)")
}

// hint explains status code: a 401 by on401 and a 403 by on403, which
// differ by mode, and the other statuses as every mode means them.
func hint(code int, on401, on403 string) string {
	if code >= 300 && code < 400 {
		return "redirect refused (tokend never follows redirects; check AMBIENT_CP_TOKEN_URL)"
	}
	h, ok := map[int]string{
		http.StatusUnauthorized:        on401,
		http.StatusForbidden:           on403,
		http.StatusNotFound:            "no token endpoint at this URL (check AMBIENT_CP_TOKEN_URL)",
		http.StatusMethodNotAllowed:    "the endpoint does not take GET (check AMBIENT_CP_TOKEN_URL)",
		http.StatusTooManyRequests:     "rate limited",
		http.StatusInternalServerError: "the control plane could not mint a token",
	}[code]
	if !ok && code >= 500 {
		return "the control plane is unavailable"
	}
	return h
}

func now(f func() time.Time) time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}
