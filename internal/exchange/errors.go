package exchange

import (
	"errors"
	"io/fs"
	"net/url"
)

// cause drops a *url.Error or *fs.PathError wrapper, whose message repeats
// the method, URL or path that the caller already states (and a URL's
// query string, which must not reach logs).
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// SafeURL returns raw for logs and error messages: scheme, host and path
// only. The control plane ignores the query string, but a gateway in front
// of it may carry a credential there (or in user info).
func SafeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the token URL"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
