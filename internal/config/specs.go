package config

import (
	"fmt"
	"io"
	"strings"
)

// spec describes one setting.
type spec struct {
	name   string // flag name, without dashes
	env    string // environment variable, "" for flag-only settings
	def    string // default, as text
	usage  string
	isBool bool
	secret bool // never print a value; a hint for readers of the table
	// emptyOK: the variable set but empty is a value (not the default);
	// any other empty variable counts as unset.
	emptyOK bool
}

var (
	exchangeSpecs = []spec{
		{name: "auth", env: "TOKEND_AUTH", def: AuthEncryptedSession, usage: "exchange mode: " + AuthEncryptedSession + " or " + AuthServiceAccount},
		{name: "token-url", env: "AMBIENT_CP_TOKEN_URL", usage: "control plane token endpoint URL (required; https in " + AuthServiceAccount + " mode)"},
		{name: "public-key", env: "AMBIENT_CP_TOKEN_PUBLIC_KEY", usage: "control plane RSA public key: PEM, or base64 of the PEM (" + AuthEncryptedSession + ")", secret: true},
		{name: "public-key-file", env: "TOKEND_PUBLIC_KEY_FILE", usage: "file holding the public key, instead of --public-key (" + AuthEncryptedSession + ")"},
		{name: "session-id", env: "SESSION_ID", usage: "session id to exchange (required in " + AuthEncryptedSession + "; a secret)", secret: true},
		{name: "identity-path", env: "AMBIENT_WORKLOAD_IDENTITY_PATH", usage: "projected ServiceAccount token file, re-read before every exchange (required in " + AuthServiceAccount + ")"},
		{name: "refresh-credential", env: "AMBIENT_CAPABILITY_REFRESH_CREDENTIAL", usage: "capability refresh credential sent with each exchange (" + AuthServiceAccount + "; optional; a secret)", secret: true},
		{name: "cp-ca-file", env: "AMBIENT_CP_CA_PATH", usage: "PEM CA bundle of the control plane's TLS listener, besides the system roots"},
		{name: "ca-file", env: "TOKEND_CA_FILE", usage: "PEM CA bundle trusted for https, besides the system roots (and SSL_CERT_FILE)"},
		{name: "allow-insecure-http", env: "TOKEND_ALLOW_INSECURE_HTTP", def: "false", isBool: true, usage: "allow plain http to hosts other than loopback and *.svc cluster names"},
		{name: "init-timeout", env: "TOKEND_INIT_TIMEOUT", def: "60s", usage: "how long the first exchange may take, retries included"},
		{name: "max-backoff", env: "TOKEND_MAX_BACKOFF", def: "30s", usage: "longest delay between failed attempts"},
	}
	fileSpecs = []spec{
		{name: "token-file", env: "TOKEND_TOKEN_FILE", def: "/var/run/ambient/token", usage: "token file to write"},
		{name: "file-mode", env: "TOKEND_FILE_MODE", def: "0640", usage: "token file permissions, octal"},
		jsonFileSpec, // see output.go
	}
	runSpecs = []spec{
		{name: "refresh-interval", env: "TOKEND_REFRESH_INTERVAL", def: "5m", usage: "refresh cadence (sooner when the token expires sooner)"},
		{name: "health-addr", env: "TOKEND_HEALTH_ADDR", def: ":12081", usage: "listen address for /livez, /readyz, /startupz and /metrics; empty disables", emptyOK: true},
	}
	checkSpecs = []spec{
		{name: "token-file", env: "TOKEND_TOKEN_FILE", def: "/var/run/ambient/token", usage: "token file to check"},
		{name: "max-age", env: "TOKEND_CHECK_MAX_AGE", def: "0s", usage: "also require a successful exchange within this long, as tokend run reports it (0 disables)"},
		{name: "health-addr", env: "TOKEND_HEALTH_ADDR", def: ":12081", usage: "probe listener of tokend run, asked for the token's expiry and last exchange; empty: judge the file alone", emptyOK: true},
	}
	logSpecs = []spec{
		{name: "log-format", env: "LOG_FORMAT", def: "text", usage: "text or json"},
		{name: "log-level", env: "LOG_LEVEL", def: "info", usage: "debug, info, warn or error"},
	}
)

func specsFor(command string) []spec {
	var s []spec
	switch command {
	case CmdInit:
		s = append(s, exchangeSpecs...)
		s = append(s, fileSpecs...)
	case CmdRun:
		s = append(s, exchangeSpecs...)
		s = append(s, fileSpecs...)
		s = append(s, runSpecs...)
		s = append(s, consumerSpecs...)
		s = append(s, onChangeSpecs...)
		s = append(s, proxySpecs...)
	case CmdCheck:
		s = append(s, checkSpecs...)
	case CmdExec: // consumers: see exec.go
		s = append(s, exchangeSpecs...)
		s = append(s, fileSpecs...)
		s = append(s, runSpecs...)
		s = append(s, consumerSpecs...)
		s = append(s, execSpecs...)
		s = append(s, proxySpecs...)
	case CmdRefresh:
		s = append(s, refreshSpecs...)
	default:
		return nil
	}
	return append(s, logSpecs...)
}

var summaries = map[string]string{
	CmdInit:  "Exchange once (retrying transient failures until --init-timeout), write the token file, and exit.",
	CmdRun:   "Exchange, write the token file, and keep it fresh until SIGTERM or SIGINT; SIGHUP or SIGUSR1 refreshes now.",
	CmdCheck: "Exit 0 when the token file exists, is non-empty and not expired; for exec probes.",
}

// usage prints a command's help: static defaults only, never a value taken
// from the environment.
func usage(w io.Writer, command string, specs []spec) {
	fmt.Fprintf(w, "Usage: tokend %s [flags]\n\n%s\n\nFlags (each falls back to its environment variable):\n", command, summaries[command])
	for _, s := range specs {
		def := ""
		if s.def != "" {
			def = " (default " + s.def + ")"
		}
		env := ""
		if s.env != "" {
			env = " [$" + s.env + "]"
		}
		fmt.Fprintf(w, "  --%-20s %s%s%s\n", s.name, s.usage, def, env)
	}
}

// Usage prints tokend's top-level help to w.
func Usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("tokend keeps a control-plane API token fresh in a file.\n\nUsage: tokend <command> [flags]\n\nCommands:\n")
	for _, c := range []string{CmdInit, CmdRun, CmdExec, CmdRefresh, CmdCheck} {
		fmt.Fprintf(&b, "  %-8s %s\n", c, summaries[c])
	}
	b.WriteString("  version  Print the version, commit and Go version.\n  help     Print this help; 'tokend <command> -h' for a command's flags.\n\nExit status: 0 success, 1 runtime failure, 2 invalid configuration.\n")
	io.WriteString(w, b.String())
}
