package exchange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/ambient-code/tokend/internal/secret"
)

// ServiceAccountTimeout is the one total deadline of a service-account
// exchange, inner retries included, as the control plane's contract fixes it.
const ServiceAccountTimeout = 5 * time.Second

// RefreshHeader carries the capability refresh credential, when configured.
const RefreshHeader = "x-ambient-capability-refresh"

// ServiceAccountAudience is the audience the control plane requires of the
// projected ServiceAccount token.
const ServiceAccountAudience = "ambient-control-plane-tokenserver"

// serviceAccountBody is the request body for sidecars, byte for byte.
const serviceAccountBody = `{"grant":"runtime-only"}`

const (
	// serviceAccountBodyLimit bounds the response body of this mode, as
	// the contract fixes it.
	serviceAccountBodyLimit = 16 << 10
	// firstRetryDelay is the first pause between attempts inside one
	// exchange, before jitter; it doubles after each attempt.
	firstRetryDelay = 100 * time.Millisecond
)

// ErrIdentity is wrapped by errors about the ServiceAccount token file:
// missing, unreadable, empty, too long, or holding bytes a header cannot
// carry. The error names the file, never its content. Retryable reports it
// as retryable, since the kubelet may not have projected the token yet.
var ErrIdentity = errors.New("exchange: ServiceAccount token unavailable")

// ErrInsecureURL is returned, before anything is sent, when a
// service-account exchange is asked to use a URL that is not https. It is
// permanent.
var ErrInsecureURL = errors.New("exchange: service-account mode sends its credential over https only")

// ServiceAccount is the control plane's successor exchange (protocol.md
// section 2). Each Exchange takes these steps within one deadline of
// Timeout:
//
//  1. Refuse a URL that is not https.
//  2. Re-read the ServiceAccount token from IdentityPath (the kubelet
//     rotates it; it is never cached).
//  3. POST {"grant":"runtime-only"} as application/json with
//     "Authorization: Bearer <ServiceAccount token>" and, when set, the
//     refresh credential in the x-ambient-capability-refresh header.
//     Redirects are never followed.
//  4. Read the answer through a 16 KiB limit and validate the token.
//  5. On a failure that the protocol retries at once (see Retryable),
//     pause (about 100 ms, doubling, jittered; or the server's Retry-After)
//     and go back to step 2, unless the pause would outlast the deadline;
//     otherwise return the last error. When the deadline cut the last
//     attempt short, the error wraps the attempt before it too, so that
//     Retryable, StatusCode and the message see why there is no token.
//
// A ServiceAccount is safe for concurrent use once constructed; its fields
// must not change afterwards.
type ServiceAccount struct {
	// URL is the token endpoint, e.g. https://ambient-control-plane.ns.svc:8443/token.
	URL string
	// IdentityPath is the projected ServiceAccount token file.
	IdentityPath string
	// RefreshCredential is sent in RefreshHeader when not empty.
	RefreshCredential secret.String
	// Client sends the requests; use NewHTTPClient, which refuses TLS
	// below 1.2. Redirects are refused whatever its CheckRedirect says.
	Client *http.Client
	// UserAgent is sent as the User-Agent header.
	UserAgent string
	// Timeout is the total deadline of one Exchange; ServiceAccountTimeout
	// when zero.
	Timeout time.Duration
	// Now returns the wall time used to judge expiry; time.Now when nil.
	Now func() time.Time
}

// Exchange implements Exchanger. Besides the errors Exchanger lists, it
// returns ErrInsecureURL and errors wrapping ErrIdentity.
func (e *ServiceAccount) Exchange(ctx context.Context) (Token, error) {
	if u, err := url.Parse(e.URL); err != nil || u.Scheme != "https" {
		return Token{}, fmt.Errorf("%w: the token URL is not https", ErrInsecureURL)
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = ServiceAccountTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := *e.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	b := newInnerBackoff(timeout)
	var prev error
	for attempt := 1; ; attempt++ {
		tok, err := e.attempt(ctx, &client)
		if err == nil {
			return tok, nil
		}
		if _, now := classify(err); !now {
			return Token{}, giveUp(err, prev, attempt, timeout)
		}
		pause := b.NextBackOff()
		if after, ok := RetryAfter(err); ok {
			pause = after
		}
		if dl, _ := ctx.Deadline(); time.Until(dl) <= pause {
			return Token{}, giveUp(err, prev, attempt, timeout)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return Token{}, giveUp(err, prev, attempt, timeout)
		case <-t.C:
		}
		prev = err
	}
}

// newInnerBackoff returns the pauses between attempts inside one exchange
// of the given deadline: about 100 ms, doubling, with jitter so that pods
// refused together do not come back together.
func newInnerBackoff(deadline time.Duration) *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(firstRetryDelay),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxInterval(deadline),
		backoff.WithMaxElapsedTime(0), // the context's deadline ends the loop
	)
}

// giveUp returns the last attempt's error, saying how many attempts the
// deadline saw when there was more than one or the deadline cut one short.
// When the deadline cut the last attempt short, the attempt before it (prev,
// when there was one) says why there is no token, so it is kept as well.
func giveUp(err, prev error, attempts int, timeout time.Duration) error {
	cut := errors.Is(err, context.DeadlineExceeded)
	switch {
	case attempts == 1 && !cut:
		return err
	case cut && prev != nil:
		return fmt.Errorf("%w (%d attempts within the %s deadline; the attempt before: %w)", err, attempts, timeout, prev)
	}
	return fmt.Errorf("%w (%d attempts within the %s deadline)", err, attempts, timeout)
}

// attempt sends one request with the ServiceAccount token as it is now.
func (e *ServiceAccount) attempt(ctx context.Context, client *http.Client) (Token, error) {
	sa, err := identityFile(e.IdentityPath).read()
	if err != nil {
		return Token{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, strings.NewReader(serviceAccountBody))
	if err != nil {
		return Token{}, fmt.Errorf("exchange: building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+sa.Reveal())
	if !e.RefreshCredential.IsZero() {
		req.Header.Set(RefreshHeader, e.RefreshCredential.Reveal())
	}
	if e.UserAgent != "" {
		req.Header.Set("User-Agent", e.UserAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Token{}, requestError("POST", e.URL, err)
	}
	defer resp.Body.Close()
	return readResponse(resp, serviceAccountBodyLimit, now(e.Now), serviceAccountHint)
}

// identityFile is the ServiceAccount token file at path.
func identityFile(path string) credentialFile {
	return credentialFile{
		path:   path,
		err:    ErrIdentity,
		absent: "the kubelet may not have projected it yet",
		denied: "set the pod's securityContext.fsGroup (the kubelet then makes the projected token group-readable), " +
			"or run tokend as the user the other containers run as",
	}
}

func serviceAccountHint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "ServiceAccount token rejected: check the projected token's audience " + ServiceAccountAudience + " (AMBIENT_WORKLOAD_IDENTITY_PATH)"
	case http.StatusForbidden:
		return "this workload may not obtain a token (check the pod's ServiceAccount and AMBIENT_CAPABILITY_REFRESH_CREDENTIAL)"
	case http.StatusBadRequest:
		return "the control plane did not accept the request (is it a different protocol version?)"
	case http.StatusMethodNotAllowed:
		return "the endpoint does not take POST: is AMBIENT_CP_TOKEN_URL the encrypted-session endpoint?"
	}
	return commonHint(code)
}
