package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/notify"
	"github.com/ambient-code/tokend/internal/proxy"
	"github.com/ambient-code/tokend/internal/refresher"
)

// commands are the commands that take settings, in help order.
var commands = []string{"init", "run", "exec", "refresh", "check"}

// summaries are the commands that take settings, with their help.
var summaries = map[string]string{
	"init":    "Exchange once (retrying transient failures until --init-timeout), write the token file, and exit.",
	"run":     "Exchange, write the token file, and keep it fresh until SIGTERM or SIGINT; SIGHUP or SIGUSR1 refreshes now.",
	"exec":    "Keep the token file fresh as run does, and run CMD (after --) once the first token is written; tokend exits with CMD's status.",
	"refresh": "Ask the running tokend for an exchange now over its --refresh-socket; exit 0 once it succeeded.",
	"check":   "Exit 0 when the token file exists, is non-empty and not expired; for exec probes.",
}

// The exchange modes, the values of --auth.
const (
	// authEncryptedSession is the deployed exchange: the session id
	// encrypted to the control plane's public key (protocol.md section 1).
	authEncryptedSession = "encrypted-session"
	// authBearer sends a static credential with GET, as the successor
	// control plane serves it so far (protocol.md section 3).
	authBearer = "bearer"
)

// modeSettings are each mode's own settings: another mode ignores them
// with a warning.
var modeSettings = map[string][]string{
	authEncryptedSession: {"public-key", "public-key-file", "session-id"},
	authBearer:           {"credential", "credential-file"},
}

// bootstrapEnv is where the successor control plane's reconciler gives the
// pod its run capability (protocol.md section 3): the bearer credential
// when neither --credential nor --credential-file is set.
const bootstrapEnv = "AMBIENT_RUNNER_BOOTSTRAP_TOKEN"

// secretEnv are the variables of settings that hold credentials: nothing
// prints their values, and the processes tokend starts do not inherit them.
var secretEnv = []string{"AMBIENT_CP_TOKEN_PUBLIC_KEY", "SESSION_ID", "TOKEND_CREDENTIAL", bootstrapEnv}

const defaultTokenFile = "/var/run/ambient/token"

// options is one command's settings: the daemon's Config, and what the
// command reads itself or validate judges together.
type options struct {
	daemon.Config
	logFormat      string
	logLevel       slog.Level
	refreshTimeout time.Duration // refresh

	tokenURL, proxyUpstream             string
	allowHTTP                           bool
	publicKey, publicKeyFile, sessionID string // encrypted-session
	credential, credentialFile          string // bearer
	caFile, cpCAFile                    string // one setting; see resolveCA
}

// setting is one row of the settings table.
type setting struct {
	name, env, def string
	// cmds: the commands that read it, i(nit) r(un) e(xec) (re)f(resh)
	// c(heck); a leading * has every command judge it when set, so a typo in
	// the environment init shares with its sidecar stops the pod at init.
	cmds  string
	usage string // "" leaves it out of help
	to    any    // its typed target in o (see flags.add)
}

// table is every setting, in help order, with its target in o.
func (o *options) table() []setting {
	c, k, x := &o.Config, &o.Config.Consumers, &o.Config.Exec
	return []setting{
		{"auth", "TOKEND_AUTH", authEncryptedSession, "*ire", "exchange mode: " + authEncryptedSession + " (deployed) or " + authBearer + " (the successor as served)", oneOf(&c.Auth, authBearer, authEncryptedSession)},
		{"token-url", "AMBIENT_CP_TOKEN_URL", "", "ire", "control plane token endpoint URL (required)", &o.tokenURL},
		{"public-key", "AMBIENT_CP_TOKEN_PUBLIC_KEY", "", "ire", "control plane RSA public key: PEM, or base64 of the PEM (" + authEncryptedSession + ")", &o.publicKey},
		{"public-key-file", "TOKEND_PUBLIC_KEY_FILE", "", "ire", "file holding the public key, instead of --public-key (" + authEncryptedSession + ")", &o.publicKeyFile},
		{"session-id", "SESSION_ID", "", "ire", "session id to exchange (required in " + authEncryptedSession + "; a secret)", &o.sessionID},
		{"credential", "TOKEND_CREDENTIAL", "", "ire", "credential sent as Authorization: Bearer (" + authBearer + "; a secret; or --credential-file; else $" + bootstrapEnv + ")", &o.credential},
		{"credential-file", "TOKEND_CREDENTIAL_FILE", "", "ire", "file holding the credential, re-read before every exchange, instead of --credential (" + authBearer + ")", &o.credentialFile},
		{"ca-file", "TOKEND_CA_FILE", "", "ire", "PEM CA bundle trusted for https besides the system roots (and SSL_CERT_FILE): " +
			"the control plane's, a proxy's or a company's; $AMBIENT_CP_CA_CERT_FILE and --cp-ca-file are the same setting", &o.caFile},
		{"cp-ca-file", "AMBIENT_CP_CA_PATH", "", "ire", "the same setting as --ca-file", &o.cpCAFile},
		{"allow-insecure-http", "TOKEND_ALLOW_INSECURE_HTTP", "false", "*ire", "allow plain http to hosts other than loopback and *.svc cluster names, and in " + authBearer +
			" mode at all ($AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT is the same setting)", &o.allowHTTP},
		{"init-timeout", "TOKEND_INIT_TIMEOUT", "60s", "*ire", "how long the first exchange may take, retries included", &c.InitTimeout},
		{"max-backoff", "TOKEND_MAX_BACKOFF", durationText(refresher.DefaultMaxBackoff), "*ire", "longest delay between failed attempts", &c.MaxBackoff},
		{"token-file", "TOKEND_TOKEN_FILE", defaultTokenFile, "irefc", "token file: init, run and exec write it, check reads it, refresh finds the socket beside it", &c.TokenFile},
		{"file-mode", "TOKEND_FILE_MODE", "0640", "*ire", "token file permissions, octal", fileMode(&c.FileMode)},
		{"json-file", "TOKEND_JSON_FILE", "", "ire", "also write the token with its expiry as a JSON document to this file (empty disables)", &c.JSONFile},
		{"refresh-interval", "TOKEND_REFRESH_INTERVAL", durationText(refresher.DefaultInterval), "*re", "refresh cadence (sooner when the token expires sooner)", &c.RefreshInterval},
		{"health-addr", "TOKEND_HEALTH_ADDR", ":12081", "*re", "listen address for /livez, /readyz, /startupz and /metrics; empty disables", healthAddr(&c.HealthAddr)},
		{"notify-signal", "TOKEND_NOTIFY_SIGNAL", "", "re", "signal sent to the process in --notify-pid-file on each token change, e.g. SIGHUP", signalValue(&k.NotifySignal)},
		{"notify-pid-file", "TOKEND_NOTIFY_PID_FILE", "", "re", "file holding the pid to signal, re-read each time (needs shareProcessNamespace)", &k.NotifyPIDFile},
		{"refresh-socket", "TOKEND_REFRESH_SOCKET", "", "re", "serve refresh requests on this Unix socket, e.g. <token dir>/.tokend.sock; empty disables", &k.RefreshSocket},
		{"remove-on-exit", "TOKEND_REMOVE_ON_EXIT", "false", "re", "remove the token file when tokend stops", &k.RemoveOnExit},
		{"on-change", "TOKEND_ON_CHANGE", "", "r", `command run without a shell on each token change: words split at spaces, or a JSON array ["prog","arg"]`,
			func(s string) (err error) { k.OnChange, err = notify.ParseArgv(s); return err }},
		{"on-change-timeout", "TOKEND_ON_CHANGE_TIMEOUT", "30s", "r", "how long --on-change may run before it is killed", &k.OnChangeTimeout},
		{"token-file-env", "TOKEND_EXEC_TOKEN_FILE_ENV", "TOKEND_TOKEN_FILE", "e", "variable that gives the child the token file's path", envName(&x.TokenFileEnv)},
		{"token-env", "TOKEND_EXEC_TOKEN_ENV", "", "e", "variable that gives the child the token itself, read once at its start; empty: none", envName(&x.TokenEnv)},
		{"change-policy", "TOKEND_EXEC_CHANGE_POLICY", "none", "e", "on a token change: none, signal (--reload-signal) or restart (--stop-signal, --grace-period)",
			oneOf(&x.Policy, child.PolicyNone, child.PolicySignal, child.PolicyRestart)},
		{"reload-signal", "TOKEND_EXEC_RELOAD_SIGNAL", "SIGHUP", "e", "signal sent to the child by --change-policy signal", signalValue(&x.ReloadSignal)},
		{"stop-signal", "TOKEND_EXEC_STOP_SIGNAL", "SIGTERM", "e", "signal that stops the child for a restart", signalValue(&x.StopSignal)},
		{"grace-period", "TOKEND_EXEC_GRACE_PERIOD", "10s", "e", "how long a stopping child has before SIGKILL", &x.Grace},
		{"on-change", "TOKEND_ON_CHANGE", "", "e", "", func(string) error { // run's setting, which exec would ignore
			return errors.New("tokend exec runs no on-change command: tell the child with --change-policy signal or restart (TOKEND_EXEC_CHANGE_POLICY), or let the child run it")
		}},
		{"max-age", "TOKEND_CHECK_MAX_AGE", "0s", "*c", "also require a successful exchange within this long, as tokend run reports it (0 disables)", func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return fmt.Errorf("must be a Go duration such as 10m, or 0 to disable, not %q", s)
			}
			c.MaxAge = d
			return nil
		}},
		{"health-addr", "TOKEND_HEALTH_ADDR", ":12081", "*c", "probe listener of tokend run, asked for the token's expiry and last exchange; empty: judge the file alone", healthAddr(&c.HealthAddr)},
		{"refresh-socket", "TOKEND_REFRESH_SOCKET", "", "f", "socket of the running tokend (default <dir of --token-file>/.tokend.sock)", &k.RefreshSocket},
		{"timeout", "TOKEND_REFRESH_TIMEOUT", "30s", "f", "how long to wait for the answer", &o.refreshTimeout},
		{"proxy-listen", "TOKEND_PROXY_LISTEN", "", "re", "credential proxy address: 127.0.0.1:PORT or unix:PATH; it adds the token to every request and forwards it to --proxy-upstream (empty disables)",
			func(s string) error {
				if c.Proxy.Listen = s; s != "" {
					return proxy.CheckAddr(s)
				}
				return nil
			}},
		{"proxy-upstream", "AMBIENT_API_SERVER_URL", "", "re", "the platform API server the credential proxy forwards to (required with --proxy-listen)", &o.proxyUpstream},
		{"log-format", "LOG_FORMAT", "text", "irefc", "text or json", oneOf(&o.logFormat, "text", "json")},
		{"log-level", "LOG_LEVEL", "info", "irefc", "debug, info, warn or error", &o.logLevel},
	}
}

// oneOf parses one of choices into p, which holds the text even when it
// is none of them.
func oneOf[T ~string](p *T, choices ...T) func(string) error {
	return func(s string) error {
		if *p = T(s); slices.Contains(choices, *p) {
			return nil
		}
		n := len(choices) - 1
		list := strings.ReplaceAll(strings.Trim(fmt.Sprint(choices[:n]), "[]"), " ", ", ") + " or " + string(choices[n])
		return fmt.Errorf("must be %s, not %q", list, s)
	}
}

// durationText formats a default duration as help shows it: 5m, not 5m0s.
// The refresher's defaults are the one source of the schedule's; the
// command only shows them.
func durationText(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, zero) {
			s = s[:len(s)-2]
		}
	}
	return s
}

// fileMode parses an octal mode that lets the owner read the file and no
// one else write it.
func fileMode(p *fs.FileMode) func(string) error {
	return func(s string) error {
		m, err := strconv.ParseUint(s, 8, 32)
		switch {
		case err != nil:
			return fmt.Errorf("must be an octal mode such as 0640, not %q", s)
		case m > 0o777:
			return fmt.Errorf("%s has bits beyond 0777: use an octal mode such as 0640", s)
		case m&0o400 == 0:
			return fmt.Errorf("%s does not let the owner read the file: use an octal mode such as 0640", s)
		case m&0o022 != 0:
			return fmt.Errorf("%s lets group or others write the token: use an octal mode such as 0640", s)
		}
		*p = fs.FileMode(m)
		return nil
	}
}

// healthAddr parses a listen address; empty disables.
func healthAddr(p *string) func(string) error {
	return func(s string) error {
		if _, _, err := net.SplitHostPort(s); s != "" && err != nil {
			return fmt.Errorf("must be host:port or :port, not %q (empty disables)", s)
		}
		*p = s
		return nil
	}
}

// envName parses a variable name; empty means none.
func envName(p *string) func(string) error {
	return func(s string) error {
		for i, r := range s {
			if r != '_' && !(r >= 'A' && r <= 'Z') && !(r >= 'a' && r <= 'z') && !(i > 0 && r >= '0' && r <= '9') {
				return fmt.Errorf("%q is not a variable name: use letters, digits and _, not starting with a digit", s)
			}
		}
		*p = s
		return nil
	}
}

// signalValue parses a signal name (SIGHUP, HUP, hup) or number; SIGKILL
// and SIGSTOP, which a process cannot handle, are refused.
func signalValue(p *syscall.Signal) func(string) error {
	return func(s string) error {
		sig := unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(s), "SIG"))
		if n, err := strconv.Atoi(s); err == nil {
			sig = syscall.Signal(n)
		}
		if sig <= 0 || sig >= 65 || sig == syscall.SIGKILL || sig == syscall.SIGSTOP {
			return fmt.Errorf("%q is not a signal tokend sends: use HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM or a number", s)
		}
		*p = sig
		return nil
	}
}
