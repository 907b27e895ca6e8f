package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/filewriter"
	"github.com/ambient-code/tokend/internal/secret"
)

// problems collects validation failures, each prefixed with the setting.
type problems struct {
	byName map[string]spec
	errs   []error
}

func (p *problems) add(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", p.label(name), fmt.Sprintf(format, args...)))
}

// label names a setting as messages do: "ENV (--flag)", or "--flag".
func (p *problems) label(name string) string {
	if s := p.byName[name]; s.env != "" {
		return s.env + " (--" + name + ")"
	}
	return "--" + name
}

func build(command string, get func(string) string, specs, given []spec) (*Config, error) {
	p := &problems{byName: map[string]spec{}}
	for _, s := range specs {
		p.byName[s.name] = s
	}
	checkGiven(p, get, given)
	c := &Config{Command: command, TokenFile: get("token-file")}
	c.LogFormat = get("log-format")
	if c.LogFormat != "text" && c.LogFormat != "json" {
		p.add("log-format", "must be text or json, not %q", c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("log-level"))); err != nil {
		p.add("log-level", "must be debug, info, warn or error, not %q", get("log-level"))
	}
	if c.TokenFile == "" {
		p.add("token-file", "required")
	}
	if command == CmdCheck {
		c.MaxAge = duration(p, get, "max-age", true)
		c.HealthAddr = get("health-addr")
		healthAddr(p, c.HealthAddr)
		return c.result(p)
	}
	if command == CmdRefresh { // see exec.go
		c.buildRefresh(p, get)
		return c.result(p)
	}

	c.FileMode = fileMode(p, get("file-mode"))
	c.InitTimeout = duration(p, get, "init-timeout", false)
	c.MaxBackoff = duration(p, get, "max-backoff", false)
	c.buildOutputs(p, get) // see output.go
	if command == CmdRun || command == CmdExec {
		c.buildConsumers(p, get) // see exec.go
		c.RefreshInterval = duration(p, get, "refresh-interval", false)
		if c.RefreshInterval > 0 && c.RefreshInterval < time.Second {
			c.Warnings = append(c.Warnings, fmt.Sprintf("TOKEND_REFRESH_INTERVAL (--refresh-interval) %s is under 1s: every refresh is a request to the control plane", c.RefreshInterval))
		}
		c.HealthAddr = get("health-addr")
		healthAddr(p, c.HealthAddr)
	}
	insecure, err := strconv.ParseBool(get("allow-insecure-http"))
	if err != nil {
		p.add("allow-insecure-http", "must be true or false, not %q", get("allow-insecure-http"))
	}
	c.AllowInsecureHTTP = insecure
	if command == CmdRun || command == CmdExec {
		c.buildProxy(p, get) // see proxy.go
	}
	c.Auth = get("auth")
	switch c.Auth {
	case AuthEncryptedSession:
		c.buildEncryptedSession(p, get)
		c.warnIgnored(p, get, "identity-path", "refresh-credential")
	case AuthServiceAccount:
		c.buildServiceAccount(p, get)
		c.warnIgnored(p, get, "public-key", "public-key-file", "session-id")
	default:
		p.add("auth", "must be %s or %s, not %q", AuthEncryptedSession, AuthServiceAccount, c.Auth)
	}
	c.CPCAFile, c.CAFile = get("cp-ca-file"), get("ca-file")
	for _, name := range []string{"cp-ca-file", "ca-file"} {
		if path := get(name); path != "" {
			if err := appendPEMFiles(x509.NewCertPool(), path); err != nil {
				p.add(name, "%v", err)
			}
		}
	}
	var full error
	if c.TokenFile != "" && c.FileMode != 0 {
		if err := filewriter.New(c.TokenFile, c.FileMode).Check(); volumeFull(err) {
			full = fmt.Errorf("%s: %w", p.label("token-file"), err)
		} else if err != nil {
			p.add("token-file", "%v", err)
		}
	}
	if full != nil && len(p.errs) == 0 {
		return nil, full // a runtime failure, not a configuration to fix
	}
	return c.result(p)
}

// volumeFull reports whether err is the token volume running out of space
// or inodes: the state of the volume, not a mistake in the configuration.
func volumeFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (c *Config) result(p *problems) (*Config, error) {
	if len(p.errs) > 0 {
		return nil, &Error{Problems: p.errs}
	}
	return c, nil
}

func (c *Config) buildEncryptedSession(p *problems, get func(string) string) {
	c.TokenURL = tokenURL(p, get("token-url"), c.AllowInsecureHTTP)
	keyText, keyFile := get("public-key"), get("public-key-file")
	switch {
	case keyText != "" && keyFile != "":
		p.add("public-key", "set either AMBIENT_CP_TOKEN_PUBLIC_KEY or TOKEND_PUBLIC_KEY_FILE, not both")
	case keyText == "" && keyFile == "":
		p.add("public-key", "required (or TOKEND_PUBLIC_KEY_FILE)")
	case keyFile != "":
		data, err := os.ReadFile(keyFile)
		if err != nil {
			p.add("public-key-file", "cannot read %s: %v", keyFile, errors.Unwrap(err))
			break
		}
		key, err := exchange.ParsePublicKey(string(data))
		if err != nil {
			p.add("public-key-file", "%s: %v", keyFile, err)
		}
		c.PublicKey = key
	default:
		key, err := exchange.ParsePublicKey(keyText)
		if err != nil {
			p.add("public-key", "%v", err)
		}
		c.PublicKey = key
	}
	sid := get("session-id")
	switch {
	case sid == "":
		p.add("session-id", "required")
	case len(sid) < 8:
		p.add("session-id", "must be at least 8 characters (the control plane rejects shorter ids)")
	case strings.IndexFunc(sid, unicode.IsSpace) >= 0:
		p.add("session-id", "must not contain whitespace (the control plane rejects it)")
	case c.PublicKey != nil && len(sid) > c.PublicKey.Size()-2*32-2:
		p.add("session-id", "is %d bytes, more than the %d a %d-bit key can encrypt", len(sid), c.PublicKey.Size()-2*32-2, c.PublicKey.N.BitLen())
	}
	c.SessionID = secret.New(sid)
}

// tokenURL validates the token endpoint URL and the plain-http policy:
// http is for loopback and in-cluster service names only, unless allowed.
func tokenURL(p *problems, raw string, allowHTTP bool) *url.URL {
	if raw == "" {
		p.add("token-url", "required")
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		p.add("token-url", "not a URL")
		return nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		p.add("token-url", "scheme must be http or https, not %q", u.Scheme)
	case u.User != nil:
		p.add("token-url", "must not carry credentials (user info)")
	case u.Hostname() == "":
		p.add("token-url", "has no host")
	case u.Scheme == "http" && !allowHTTP && !internalHost(u.Hostname()):
		p.add("token-url", "plain http to %s is refused: use https, an in-cluster *.svc name, or --allow-insecure-http", u.Hostname())
	default:
		return u
	}
	return nil
}

// internalHost reports whether plain http to host stays on the node or
// inside the cluster network: loopback, or a Kubernetes service name.
func internalHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".svc.cluster.local")
}

func fileMode(p *problems, raw string) fs.FileMode {
	m, err := strconv.ParseUint(raw, 8, 32)
	switch {
	case err != nil:
		p.add("file-mode", "must be an octal mode such as 0640, not %q", raw)
	case m > 0o777:
		p.add("file-mode", "%s has bits beyond 0777", raw)
	case m&0o400 == 0:
		p.add("file-mode", "%s does not let the owner read the file", raw)
	case m&0o022 != 0:
		p.add("file-mode", "%s lets group or others write the token", raw)
	default:
		return fs.FileMode(m)
	}
	return 0
}

func duration(p *problems, get func(string) string, name string, zeroOK bool) time.Duration {
	raw := get(name)
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		p.add(name, "must be a Go duration such as 30s or 5m, not %q", raw)
	case d < 0 || (d == 0 && !zeroOK):
		p.add(name, "must be positive, not %s", raw)
	default:
		return d
	}
	return 0
}

// LoadRoots returns the system roots plus the certificates in the PEM files
// at paths; empty paths are skipped. The system roots honour SSL_CERT_FILE
// and SSL_CERT_DIR. Loading them is most of a cold start's CPU, so call it
// only for an https URL.
func LoadRoots(paths ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if err := appendPEMFiles(pool, paths...); err != nil {
		return nil, err
	}
	return pool, nil
}

// appendPEMFiles adds the certificates of the PEM files at paths to pool;
// empty paths are skipped.
func appendPEMFiles(pool *x509.CertPool, paths ...string) error {
	for _, path := range paths {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
		}
		if !pool.AppendCertsFromPEM(data) {
			return fmt.Errorf("%s holds no PEM certificate", path)
		}
	}
	return nil
}
