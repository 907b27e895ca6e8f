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

// shared are the settings that every command judges when their variable
// is set, even one that does not read them: an init container and its
// sidecar share one environment, so a typo stops the pod at init.
var shared = []string{"auth", "allow-insecure-http", "init-timeout", "max-backoff", "file-mode", "refresh-interval", "health-addr", "max-age"}

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

// define registers command's settings on f, in help order: the table of
// every flag, its variable, default, usage and typed target.
func (o *options) define(f *flags, command string) {
	c, k, x := &o.Config, &o.Config.Consumers, &o.Config.Exec
	exchanges, runs := command == "init" || command == "run" || command == "exec", command == "run" || command == "exec"
	if exchanges {
		f.add(func(s string) error {
			if c.Auth = s; modeSettings[s] == nil {
				return fmt.Errorf("must be %s or %s, not %q", authBearer, authEncryptedSession, s)
			}
			return nil
		}, "auth", "TOKEND_AUTH", authEncryptedSession, "exchange mode: "+authEncryptedSession+" (deployed) or "+authBearer+" (the successor as served)")
		f.add(&o.tokenURL, "token-url", "AMBIENT_CP_TOKEN_URL", "", "control plane token endpoint URL (required)")
		f.add(&o.publicKey, "public-key", "AMBIENT_CP_TOKEN_PUBLIC_KEY", "", "control plane RSA public key: PEM, or base64 of the PEM ("+authEncryptedSession+")")
		f.add(&o.publicKeyFile, "public-key-file", "TOKEND_PUBLIC_KEY_FILE", "", "file holding the public key, instead of --public-key ("+authEncryptedSession+")")
		f.add(&o.sessionID, "session-id", "SESSION_ID", "", "session id to exchange (required in "+authEncryptedSession+"; a secret)")
		f.add(&o.credential, "credential", "TOKEND_CREDENTIAL", "", "credential sent as Authorization: Bearer ("+authBearer+"; a secret; or --credential-file; else $"+bootstrapEnv+")")
		f.add(&o.credentialFile, "credential-file", "TOKEND_CREDENTIAL_FILE", "", "file holding the credential, re-read before every exchange, instead of --credential ("+authBearer+")")
		f.add(&o.caFile, "ca-file", "TOKEND_CA_FILE", "", "PEM CA bundle trusted for https besides the system roots (and SSL_CERT_FILE): "+
			"the control plane's, a proxy's or a company's; $AMBIENT_CP_CA_CERT_FILE and --cp-ca-file are the same setting")
		f.add(&o.cpCAFile, "cp-ca-file", "AMBIENT_CP_CA_PATH", "", "the same setting as --ca-file")
		f.add(&o.allowHTTP, "allow-insecure-http", "TOKEND_ALLOW_INSECURE_HTTP", "false", "allow plain http to hosts other than loopback and *.svc cluster names, and in "+authBearer+" mode at all ($AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT is the same setting)")
		f.add(&c.InitTimeout, "init-timeout", "TOKEND_INIT_TIMEOUT", "60s", "how long the first exchange may take, retries included")
		f.add(&c.MaxBackoff, "max-backoff", "TOKEND_MAX_BACKOFF", durationText(refresher.DefaultMaxBackoff), "longest delay between failed attempts")
		f.add(&c.TokenFile, "token-file", "TOKEND_TOKEN_FILE", defaultTokenFile, "token file to write")
		f.add(fileMode(&c.FileMode), "file-mode", "TOKEND_FILE_MODE", "0640", "token file permissions, octal")
		f.add(&c.Outputs.JSONFile, "json-file", "TOKEND_JSON_FILE", "", "also write the token with its expiry as a JSON document to this file (empty disables)")
	}
	if runs {
		f.add(&c.RefreshInterval, "refresh-interval", "TOKEND_REFRESH_INTERVAL", durationText(refresher.DefaultInterval), "refresh cadence (sooner when the token expires sooner)")
		f.add(healthAddr(&c.HealthAddr), "health-addr", "TOKEND_HEALTH_ADDR", ":12081", "listen address for /livez, /readyz, /startupz and /metrics; empty disables")
		f.add(signalValue(&k.NotifySignal), "notify-signal", "TOKEND_NOTIFY_SIGNAL", "", "signal sent to the process in --notify-pid-file on each token change, e.g. SIGHUP")
		f.add(&k.NotifyPIDFile, "notify-pid-file", "TOKEND_NOTIFY_PID_FILE", "", "file holding the pid to signal, re-read each time (needs shareProcessNamespace)")
		f.add(&k.RefreshSocket, "refresh-socket", "TOKEND_REFRESH_SOCKET", "", "serve refresh requests on this Unix socket, e.g. <token dir>/.tokend.sock; empty disables")
		f.add(&k.RemoveOnExit, "remove-on-exit", "TOKEND_REMOVE_ON_EXIT", "false", "remove the token file when tokend stops")
	}
	switch command {
	case "run":
		f.add(func(s string) (err error) { k.OnChange, err = notify.ParseArgv(s); return err }, "on-change", "TOKEND_ON_CHANGE", "",
			`command run without a shell on each token change: words split at spaces, or a JSON array ["prog","arg"]`)
		f.add(&k.OnChangeTimeout, "on-change-timeout", "TOKEND_ON_CHANGE_TIMEOUT", "30s", "how long --on-change may run before it is killed")
	case "exec":
		f.add(envName(&x.TokenFileEnv), "token-file-env", "TOKEND_EXEC_TOKEN_FILE_ENV", "TOKEND_TOKEN_FILE", "variable that gives the child the token file's path")
		f.add(envName(&x.TokenEnv), "token-env", "TOKEND_EXEC_TOKEN_ENV", "", "variable that gives the child the token itself, read once at its start; empty: none")
		f.add(func(s string) error {
			if x.Policy = child.Policy(s); !slices.Contains([]child.Policy{child.PolicyNone, child.PolicySignal, child.PolicyRestart}, x.Policy) {
				return fmt.Errorf("must be none, signal or restart, not %q", s)
			}
			return nil
		}, "change-policy", "TOKEND_EXEC_CHANGE_POLICY", "none", "on a token change: none, signal (--reload-signal) or restart (--stop-signal, --grace-period)")
		f.add(signalValue(&x.ReloadSignal), "reload-signal", "TOKEND_EXEC_RELOAD_SIGNAL", "SIGHUP", "signal sent to the child by --change-policy signal")
		f.add(signalValue(&x.StopSignal), "stop-signal", "TOKEND_EXEC_STOP_SIGNAL", "SIGTERM", "signal that stops the child for a restart")
		f.add(&x.Grace, "grace-period", "TOKEND_EXEC_GRACE_PERIOD", "10s", "how long a stopping child has before SIGKILL")
		f.add(func(string) error { // run's setting, which exec would ignore; unlisted in help
			return errors.New("tokend exec runs no on-change command: tell the child with --change-policy signal or restart (TOKEND_EXEC_CHANGE_POLICY), or let the child run it")
		}, "on-change", "TOKEND_ON_CHANGE", "", "")
	case "check":
		f.add(&c.TokenFile, "token-file", "TOKEND_TOKEN_FILE", defaultTokenFile, "token file to check")
		f.add(func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return fmt.Errorf("must be a Go duration such as 10m, or 0 to disable, not %q", s)
			}
			c.MaxAge = d
			return nil
		}, "max-age", "TOKEND_CHECK_MAX_AGE", "0s", "also require a successful exchange within this long, as tokend run reports it (0 disables)")
		f.add(healthAddr(&c.HealthAddr), "health-addr", "TOKEND_HEALTH_ADDR", ":12081", "probe listener of tokend run, asked for the token's expiry and last exchange; empty: judge the file alone")
	case "refresh":
		f.add(&k.RefreshSocket, "refresh-socket", "TOKEND_REFRESH_SOCKET", "", "socket of the running tokend (default <dir of --token-file>/.tokend.sock)")
		f.add(&c.TokenFile, "token-file", "TOKEND_TOKEN_FILE", defaultTokenFile, "token file, whose directory holds the socket")
		f.add(&o.refreshTimeout, "timeout", "TOKEND_REFRESH_TIMEOUT", "30s", "how long to wait for the answer")
	}
	if runs {
		f.add(func(s string) error {
			if c.Proxy.Listen = s; s != "" {
				return proxy.CheckAddr(s)
			}
			return nil
		}, "proxy-listen", "TOKEND_PROXY_LISTEN", "", "credential proxy address: 127.0.0.1:PORT or unix:PATH; it adds the token to every request and forwards it to --proxy-upstream (empty disables)")
		f.add(&o.proxyUpstream, "proxy-upstream", "AMBIENT_API_SERVER_URL", "", "the platform API server the credential proxy forwards to (required with --proxy-listen)")
	}
	f.add(func(s string) error {
		if s != "text" && s != "json" {
			return fmt.Errorf("must be text or json, not %q", s)
		}
		o.logFormat = s
		return nil
	}, "log-format", "LOG_FORMAT", "text", "text or json")
	f.add(&o.logLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
}

// durationText formats a default duration as help shows it: 5m, not 5m0s.
// The refresher's defaults are the one source of the schedule's; the
// command only shows them.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
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
