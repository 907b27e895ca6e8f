package config

import (
	"errors"
	"net/http"
	"os"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/version"
)

// The bearer mode: a static credential sent with GET, as the successor
// control plane serves its token endpoint so far (protocol.md section 3,
// where the credential is a control-plane-signed capability). The
// capability is valid for days, so plain http, even to a cluster name or
// loopback, needs the opt-in the successor's own runner asks for.
var (
	credential = &setting{name: "credential", env: "TOKEND_CREDENTIAL", secret: true,
		usage: "credential sent as Authorization: Bearer (" + AuthBearer + "; a secret; or --credential-file)"}
	credentialFile = &setting{name: "credential-file", env: "TOKEND_CREDENTIAL_FILE",
		usage: "file holding the credential, re-read before every exchange, instead of --credential (" + AuthBearer + ")"}
)

func init() {
	register(&mode{name: AuthBearer, settings: []*setting{credential, credentialFile}, build: buildBearer})
}

// buildBearer validates the bearer mode's settings: exactly one of the
// credential and its file. The file may be missing at startup (a secret
// volume may be late; the exchange retries), but must not be a directory.
func buildBearer(c *Config, p *problems) func(*http.Client) exchange.Exchanger {
	c.TokenURL = parseTokenURL(p, c.get(tokenURL), c.AllowInsecureHTTP)
	if u := c.TokenURL; u != nil && u.Scheme == "http" && !c.AllowInsecureHTTP {
		p.add(tokenURL, "plain http is refused in %s mode, whose credential is a capability valid for days: use https, or set TOKEND_ALLOW_INSECURE_HTTP=true (or AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT=true) to send it in the clear", AuthBearer)
	}
	ex := &exchange.Bearer{CredentialFile: c.get(credentialFile), UserAgent: version.UserAgent()}
	value := c.get(credential)
	switch {
	case value != "" && ex.CredentialFile != "":
		p.add(credential, "set either TOKEND_CREDENTIAL or TOKEND_CREDENTIAL_FILE, not both")
	case value == "" && ex.CredentialFile == "":
		p.add(credential, "required in %s mode (or TOKEND_CREDENTIAL_FILE)", AuthBearer)
	case value != "":
		checkHeaderValue(p, credential, value)
		ex.Credential = secret.New(value)
	default:
		if fi, err := os.Stat(ex.CredentialFile); err == nil && fi.IsDir() {
			p.add(credentialFile, "%s is a directory, not the credential file", ex.CredentialFile)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			c.Warnings = append(c.Warnings, p.label(credentialFile)+": "+err.Error()+"; tokend retries")
		}
	}
	return func(client *http.Client) exchange.Exchanger {
		e := *ex
		e.URL, e.Client = c.TokenURL.String(), client
		return &e
	}
}
