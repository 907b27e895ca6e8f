package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/refresher"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/version"
)

// The service-account mode: POST with the pod's projected ServiceAccount
// token, over https only (protocol.md section 2, announced).
var (
	identityPath = &setting{name: "identity-path", env: "AMBIENT_WORKLOAD_IDENTITY_PATH",
		usage: "projected ServiceAccount token file, re-read before every exchange (required in " + AuthServiceAccount + ")"}
	refreshCredentialSetting = &setting{name: "refresh-credential", env: "AMBIENT_CAPABILITY_REFRESH_CREDENTIAL", secret: true,
		usage: "capability refresh credential sent with each exchange (" + AuthServiceAccount + "; optional; a secret)"}
)

func init() {
	register(&mode{name: AuthServiceAccount, settings: []*setting{identityPath, refreshCredentialSetting}, build: buildServiceAccount})
}

// buildServiceAccount validates the service-account mode's settings. The
// ServiceAccount token file itself may be missing at startup (the kubelet
// may be late; the exchange retries), but the directory it is projected
// into must exist. Its tokens live two minutes: each is replaced after a
// minute, keeping a minute for failed exchanges.
func buildServiceAccount(c *Config, p *problems) func(*http.Client) exchange.Exchanger {
	c.MinMargin = refresher.ShortLivedMargin
	c.TokenURL = parseTokenURL(p, c.get(tokenURL), true)
	if c.TokenURL != nil && c.TokenURL.Scheme != "https" {
		p.add(tokenURL, "must be https in %s mode: the ServiceAccount token is a credential and never travels in plain text (--allow-insecure-http does not apply)", AuthServiceAccount)
		c.TokenURL = nil
	}
	if c.AllowInsecureHTTP {
		c.Warnings = append(c.Warnings, p.label(allowInsecureHTTP)+" has no effect in "+AuthServiceAccount+" mode, which uses https only")
	}
	ex := &exchange.ServiceAccount{IdentityPath: c.get(identityPath), UserAgent: version.UserAgent()}
	if ex.IdentityPath == "" {
		p.add(identityPath, "required in %s mode", AuthServiceAccount)
	} else {
		c.checkIdentityPath(p, ex.IdentityPath)
	}
	if rc := c.get(refreshCredentialSetting); rc != "" {
		checkHeaderValue(p, refreshCredentialSetting, rc)
		ex.RefreshCredential = secret.New(rc)
	}
	return func(client *http.Client) exchange.Exchanger {
		e := *ex
		e.URL, e.Client = c.TokenURL.String(), client
		return &e
	}
}

func (c *Config) checkIdentityPath(p *problems, path string) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		p.add(identityPath, "%s is a directory, not the ServiceAccount token file", path)
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if di, err := os.Stat(dir); err != nil || !di.IsDir() {
			p.add(identityPath, "directory %s does not exist: is the projected ServiceAccount token volume mounted?", dir)
			return
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s does not exist yet; tokend retries until the kubelet projects it", p.label(identityPath), path))
	default:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: %v; tokend retries", p.label(identityPath), path, errors.Unwrap(err)))
	}
}
