package exchange

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"syscall"
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

// requestError reports a request that got no answer. When the server's
// certificate is signed by an authority tokend does not trust, it names the
// settings that add one.
func requestError(method, rawURL string, err error) error {
	hint := ""
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		hint = "; the server's certificate is signed by a CA tokend does not trust: " +
			"give tokend that CA's PEM certificate (the control plane's, a proxy's or a company's; several in one bundle) " +
			"with --ca-file (TOKEND_CA_FILE) or --cp-ca-file (AMBIENT_CP_CA_PATH), one setting also read from AMBIENT_CP_CA_CERT_FILE"
	}
	return fmt.Errorf("exchange: %s %s: %w%s", method, SafeURL(rawURL), cause(err), hint)
}

// fileAccessHint says who tokend runs as and who owns path, when opening
// path was refused; "" for any other error.
func fileAccessHint(path string, err error) string {
	if !errors.Is(err, fs.ErrPermission) {
		return ""
	}
	hint := fmt.Sprintf("; tokend runs as uid %d, gid %d", os.Getuid(), os.Getgid())
	if fi, serr := os.Stat(path); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hint += fmt.Sprintf(", and the file is owned by uid %d, gid %d with mode %04o", st.Uid, st.Gid, fi.Mode().Perm())
		}
	}
	return hint
}
