package exchange

import (
	"errors"
	"net/url"
)

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// method and URL that the caller already states.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// safeURL returns raw for error messages: scheme, host and path only. The
// control plane ignores the query string, but a gateway in front of it may
// carry a credential there (or in user info), and errors end up in logs.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the token URL"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
