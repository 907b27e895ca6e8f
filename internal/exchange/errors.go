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
