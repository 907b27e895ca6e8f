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
// filesystem only to read the key and CA files, to look for the
// ServiceAccount token's directory, and to prove that the token's directory
// is writable.
//
// Which settings are required depends on the auth mode: encrypted-session
// needs the public key and the session id; service-account needs an https
// token URL and the ServiceAccount token path. Settings of the other mode
// are ignored with a warning.
package config

import (
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/ambient-code/tokend/internal/secret"
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
	// AuthServiceAccount is its successor: POST with the pod's projected
	// ServiceAccount token, over https only.
	AuthServiceAccount = "service-account"
)

// Config is the validated configuration of one tokend command.
type Config struct {
	Command string

	// Exchange (init, run).
	Auth              string
	TokenURL          *url.URL
	PublicKey         *rsa.PublicKey
	SessionID         secret.String
	IdentityPath      string
	RefreshCredential secret.String
	CPCAFile          string
	CAFile            string
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
}

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

// Parse reads the configuration of command from args (the arguments after
// the command name) and getenv. Help output and usage errors go to out. It
// returns flag.ErrHelp when help was asked for, an *Error when the
// configuration is invalid, and any other error for a runtime failure found
// while checking it (a token volume without free space or inodes).
func Parse(command string, args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	return ParseEnv(command, args, func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}, out)
}

// ParseEnv is Parse with os.LookupEnv semantics, so that a variable set
// but empty is told apart from an unset one: TOKEND_HEALTH_ADDR= disables
// the health server, while unset keeps its default. Other settings treat
// an empty value as unset.
func ParseEnv(command string, args []string, lookupenv func(string) (string, bool), out io.Writer) (*Config, error) {
	specs := specsFor(command)
	if specs == nil {
		return nil, fmt.Errorf("unknown command %q", command)
	}
	fs := flag.NewFlagSet("tokend "+command, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { usage(out, command, specs) }
	vals := make(map[string]*string, len(specs))
	for _, s := range specs {
		v := s.def
		if e, ok := lookupenv(s.env); s.env != "" && ok && (e != "" || s.emptyOK) {
			v = e
		}
		vals[s.name] = &v
		if s.isBool {
			fs.Var(boolValue{&v}, s.name, s.usage)
		} else {
			fs.Var(stringValue{&v}, s.name, s.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, &Error{Problems: []error{err}}
	}
	if fs.NArg() > 0 {
		return nil, &Error{Problems: []error{fmt.Errorf("unexpected arguments: %q", fs.Args())}}
	}
	given, givenVals := givenElsewhere(command, lookupenv)
	for name, v := range givenVals {
		vals[name] = &v
	}
	get := func(name string) string { return strings.TrimSpace(*vals[name]) }
	return build(command, get, specs, given)
}

// stringValue is a flag.Value over a string that Parse pre-filled from the
// environment. Its String is empty so that flag never prints a secret.
type stringValue struct{ p *string }

func (v stringValue) String() string     { return "" }
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *string }

func (v boolValue) String() string     { return "" }
func (v boolValue) Set(s string) error { *v.p = s; return nil }
func (v boolValue) IsBoolFlag() bool   { return true }
