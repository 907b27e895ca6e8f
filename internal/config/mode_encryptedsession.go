package config

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"unicode"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/version"
)

// The encrypted-session mode: the session id encrypted to the control
// plane's public key (protocol.md section 1).
var (
	publicKey = &setting{name: "public-key", env: "AMBIENT_CP_TOKEN_PUBLIC_KEY", secret: true,
		usage: "control plane RSA public key: PEM, or base64 of the PEM (" + AuthEncryptedSession + ")"}
	publicKeyFile = &setting{name: "public-key-file", env: "TOKEND_PUBLIC_KEY_FILE",
		usage: "file holding the public key, instead of --public-key (" + AuthEncryptedSession + ")"}
	sessionIDSetting = &setting{name: "session-id", env: "SESSION_ID", secret: true,
		usage: "session id to exchange (required in " + AuthEncryptedSession + "; a secret)"}
)

func init() {
	register(&mode{name: AuthEncryptedSession, settings: []*setting{publicKey, publicKeyFile, sessionIDSetting}, build: buildEncryptedSession})
}

func buildEncryptedSession(c *Config, p *problems) func(*http.Client) exchange.Exchanger {
	c.TokenURL = parseTokenURL(p, c.get(tokenURL), c.AllowInsecureHTTP)
	ex := &exchange.EncryptedSession{UserAgent: version.UserAgent()}
	keyText, keyFile := c.get(publicKey), c.get(publicKeyFile)
	switch {
	case keyText != "" && keyFile != "":
		p.add(publicKey, "set either AMBIENT_CP_TOKEN_PUBLIC_KEY or TOKEND_PUBLIC_KEY_FILE, not both")
	case keyText == "" && keyFile == "":
		p.add(publicKey, "required (or TOKEND_PUBLIC_KEY_FILE)")
	case keyFile != "":
		data, err := os.ReadFile(keyFile)
		if err != nil {
			p.add(publicKeyFile, "cannot read %s: %v", keyFile, errors.Unwrap(err))
			break
		}
		key, err := exchange.ParsePublicKey(string(data))
		if err != nil {
			p.add(publicKeyFile, "%s: %v", keyFile, err)
		}
		ex.PublicKey = key
	default:
		key, err := exchange.ParsePublicKey(keyText)
		if err != nil {
			p.add(publicKey, "%v", err)
		}
		ex.PublicKey = key
	}
	sid := c.get(sessionIDSetting)
	switch {
	case sid == "":
		p.add(sessionIDSetting, "required")
	case len(sid) < 8:
		p.add(sessionIDSetting, "must be at least 8 characters (the control plane rejects shorter ids)")
	case strings.IndexFunc(sid, unicode.IsSpace) >= 0:
		p.add(sessionIDSetting, "must not contain whitespace (the control plane rejects it)")
	case ex.PublicKey != nil && len(sid) > ex.PublicKey.Size()-2*32-2:
		p.add(sessionIDSetting, "is %d bytes, more than the %d a %d-bit key can encrypt", len(sid), ex.PublicKey.Size()-2*32-2, ex.PublicKey.N.BitLen())
	}
	ex.SessionID = secret.New(sid)
	return func(client *http.Client) exchange.Exchanger {
		e := *ex
		e.URL, e.Client = c.TokenURL.String(), client
		return &e
	}
}
