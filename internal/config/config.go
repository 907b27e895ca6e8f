// Package config turns tokend's flags and environment into a validated
// Config.
//
// Every setting is a flag with an environment fallback; a flag that is set
// wins over the environment, which wins over the default. Parse reports every
// problem at once, each naming the environment variable and the flag, and
// never quoting a secret's value. A command also checks the form of the
// settings that only other commands read when it finds them in the
// environment (an init container and its sidecar share one), so a typo
// stops the pod at init. Parse touches the network never and the
// filesystem only to read the key and CA files, and to prove that the token's directory
// is writable.
//
// Settings are typed: each is a package variable (settings.go) whose text
// is parsed by flag's own typed values (DurationVar, BoolVar, TextVar,
// Func) into a field of Config, so code names a setting by identifier and
// a misspelt one does not compile.
//
// Which settings are required depends on the auth mode. The modes form a
// table: each lives in one file, mode_<name>.go, holding its settings,
// their validation and the exchanger it builds, and registers itself.
// Adding a mode is adding such a file (and, for a new wire protocol, its
// Exchanger in package exchange). Settings of the other modes are ignored
// with a warning.
package config

import (
	"crypto/x509"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
)

// Commands that take configuration.
const (
	CmdInit  = "init"
	CmdRun   = "run"
	CmdCheck = "check"
)

// Auth modes.
const (
	// AuthEncryptedSession is the deployed exchange: the session id
	// encrypted to the control plane's public key.
	AuthEncryptedSession = "encrypted-session"
	// AuthBearer sends a static credential with GET, as the successor
	// control plane serves it so far.
	AuthBearer = "bearer"
)

// Config is the validated configuration of one tokend command.
type Config struct {
	Command string

	// Exchange (init, run).
	Auth     string
	TokenURL *url.URL
	// CAFile is the PEM bundle trusted besides the system roots (caBundle
	// in roots.go says which variables feed it).
	CAFile string
	// Roots are the system roots plus CAFile's certificates, parsed once;
	// nil when neither the token URL nor the proxy's upstream is https
	// (loading the system roots is most of a cold start's CPU).
	Roots             *x509.CertPool
	AllowInsecureHTTP bool
	RefreshInterval   time.Duration
	InitTimeout       time.Duration
	MaxBackoff        time.Duration
	HealthAddr        string

	// Token file (all commands).
	TokenFile string
	FileMode  fs.FileMode

	// Check.
	MaxAge time.Duration

	// Consumers that cannot watch the file (run, exec; see exec.go).
	Consumers      Consumers
	Exec           Exec
	RefreshTimeout time.Duration // refresh
	// The credential proxy (run, exec; see proxy.go).
	Proxy Proxy
	// Outputs besides the token file (init, run, exec; see output.go).
	Outputs Outputs

	// Logging (all commands).
	LogFormat string
	LogLevel  slog.Level

	// Warnings are non-fatal remarks on the configuration, for the log.
	Warnings []string

	// text holds each setting's text, after trimming; settings without a
	// typed value are read from here (Config.get).
	text map[*setting]string
	// exchanger builds the mode's Exchanger (Exchanger).
	exchanger func(client *http.Client) exchange.Exchanger
}

// Exchanger returns the exchanger of the configured mode, sending its
// requests with client (exchange.NewHTTPClient(c.Roots) in production).
// c must be the configuration of a command that exchanges (init, run,
// exec); each call returns a new Exchanger.
func (c *Config) Exchanger(client *http.Client) exchange.Exchanger {
	return c.exchanger(client)
}

// get returns the text of setting s.
func (c *Config) get(s *setting) string { return c.text[s] }

// Error reports invalid configuration: one or more problems, each naming
// the setting. Commands exit with status 2 on it.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *Error) Unwrap() []error { return e.Problems }
