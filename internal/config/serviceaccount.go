package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ambient-code/tokend/internal/secret"
)

// buildServiceAccount validates the service-account mode's settings. The
// ServiceAccount token file itself may be missing at startup (the kubelet
// may be late; the exchange retries), but the directory it is projected
// into must exist.
func (c *Config) buildServiceAccount(p *problems, get func(string) string) {
	c.TokenURL = tokenURL(p, get("token-url"), true)
	if c.TokenURL != nil && c.TokenURL.Scheme != "https" {
		p.add("token-url", "must be https in %s mode: the ServiceAccount token is a credential and never travels in plain text (--allow-insecure-http does not apply)", AuthServiceAccount)
		c.TokenURL = nil
	}
	if c.AllowInsecureHTTP {
		c.Warnings = append(c.Warnings, p.label("allow-insecure-http")+" has no effect in "+AuthServiceAccount+" mode, which uses https only")
	}
	c.IdentityPath = get("identity-path")
	if c.IdentityPath == "" {
		p.add("identity-path", "required in %s mode", AuthServiceAccount)
	} else {
		c.checkIdentityPath(p)
	}
	if rc := get("refresh-credential"); rc != "" {
		if i := strings.IndexFunc(rc, func(r rune) bool { return r <= ' ' || r >= 0x7f }); i >= 0 {
			p.add("refresh-credential", "has a whitespace, control or non-ASCII character at offset %d (it is sent as an HTTP header)", i)
		}
		c.RefreshCredential = secret.New(rc)
	}
}

func (c *Config) checkIdentityPath(p *problems) {
	path := c.IdentityPath
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		p.add("identity-path", "%s is a directory, not the ServiceAccount token file", path)
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if di, err := os.Stat(dir); err != nil || !di.IsDir() {
			p.add("identity-path", "directory %s does not exist: is the projected ServiceAccount token volume mounted?", dir)
			return
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s does not exist yet; tokend retries until the kubelet projects it", p.label("identity-path"), path))
	default:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: %v; tokend retries", p.label("identity-path"), path, errors.Unwrap(err)))
	}
}

// warnIgnored adds one warning naming the settings among names that are
// set although the auth mode does not use them.
func (c *Config) warnIgnored(p *problems, get func(string) string, names ...string) {
	var set []string
	for _, n := range names {
		if get(n) != "" {
			set = append(set, p.label(n))
		}
	}
	if len(set) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: ignored in %s mode", strings.Join(set, ", "), c.Auth))
	}
}
