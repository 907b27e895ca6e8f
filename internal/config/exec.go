package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/notify"
)

// Commands for consumers that cannot watch the token file.
const (
	// CmdExec runs a command beside the refresher (tokend exec -- CMD).
	CmdExec = "exec"
	// CmdRefresh asks a running tokend for an exchange now.
	CmdRefresh = "refresh"
)

// Consumers configures how run and exec tell other processes of a token
// change, and the refresh socket.
type Consumers struct {
	// NotifySignal goes to the process in NotifyPIDFile on each change;
	// zero when unset.
	NotifySignal  syscall.Signal
	NotifyPIDFile string
	// OnChange is run, without a shell, on each change (run only).
	OnChange        []string
	OnChangeTimeout time.Duration
	// RefreshSocket is the Unix socket serving refresh requests; "" off.
	RefreshSocket string
	// RemoveOnExit removes the token file when tokend stops.
	RemoveOnExit bool
}

// Exec configures the child of tokend exec.
type Exec struct {
	// Argv is the command after "--".
	Argv []string
	// TokenFileEnv names the variable that carries the token file's path.
	TokenFileEnv string
	// TokenEnv, when set, names a variable that carries the token itself,
	// as it was when the child started.
	TokenEnv     string
	Policy       child.Policy
	ReloadSignal syscall.Signal
	StopSignal   syscall.Signal
	Grace        time.Duration
}

var (
	notifySignal = &setting{name: "notify-signal", env: "TOKEND_NOTIFY_SIGNAL",
		usage: "signal sent to the process in --notify-pid-file on each token change, e.g. SIGHUP"}
	notifyPIDFile = &setting{name: "notify-pid-file", env: "TOKEND_NOTIFY_PID_FILE",
		usage: "file holding the pid to signal, re-read each time (needs shareProcessNamespace)"}
	refreshSocket = &setting{name: "refresh-socket", env: "TOKEND_REFRESH_SOCKET",
		usage: "serve refresh requests on this Unix socket, e.g. <token dir>/" + ".tokend.sock; empty disables",
		value: func(c *Config) flag.Value { return stringVar(&c.Consumers.RefreshSocket) }}
	removeOnExit = &setting{name: "remove-on-exit", env: "TOKEND_REMOVE_ON_EXIT", def: "false", usage: "remove the token file when tokend stops",
		value: func(c *Config) flag.Value { return boolVar(&c.Consumers.RemoveOnExit) }, bad: badBool}
	consumerSpecs = []*setting{notifySignal, notifyPIDFile, refreshSocket, removeOnExit}

	onChange = &setting{name: "on-change", env: "TOKEND_ON_CHANGE",
		usage: `command run without a shell on each token change: words split at spaces, or a JSON array ["prog","arg"]`}
	onChangeTimeout = &setting{name: "on-change-timeout", env: "TOKEND_ON_CHANGE_TIMEOUT", def: "30s", usage: "how long --on-change may run before it is killed",
		value: func(c *Config) flag.Value { return durationVar(&c.Consumers.OnChangeTimeout) }, bad: badDuration,
		form: positive(func(c *Config) time.Duration { return c.Consumers.OnChangeTimeout })}
	onChangeSpecs = []*setting{onChange, onChangeTimeout}

	tokenFileEnv = &setting{name: "token-file-env", env: "TOKEND_EXEC_TOKEN_FILE_ENV", def: "TOKEND_TOKEN_FILE", usage: "variable that gives the child the token file's path",
		value: func(c *Config) flag.Value { return stringVar(&c.Exec.TokenFileEnv) }, form: envNameForm}
	tokenEnv = &setting{name: "token-env", env: "TOKEND_EXEC_TOKEN_ENV", usage: "variable that gives the child the token itself, read once at its start; empty: none",
		value: func(c *Config) flag.Value { return stringVar(&c.Exec.TokenEnv) }, form: envNameForm}
	changePolicy = &setting{name: "change-policy", env: "TOKEND_EXEC_CHANGE_POLICY", def: "none", usage: "on a token change: none, signal (--reload-signal) or restart (--stop-signal, --grace-period)",
		value: func(c *Config) flag.Value {
			return funcVar(func(s string) error {
				c.Exec.Policy = child.Policy(s)
				if !slices.Contains([]child.Policy{child.PolicyNone, child.PolicySignal, child.PolicyRestart}, c.Exec.Policy) {
					return fmt.Errorf("must be none, signal or restart, not %q", s)
				}
				return nil
			})
		}}
	reloadSignal = &setting{name: "reload-signal", env: "TOKEND_EXEC_RELOAD_SIGNAL", def: "SIGHUP", usage: "signal sent to the child by --change-policy signal",
		value: func(c *Config) flag.Value { return signalVar(&c.Exec.ReloadSignal) }}
	stopSignal = &setting{name: "stop-signal", env: "TOKEND_EXEC_STOP_SIGNAL", def: "SIGTERM", usage: "signal that stops the child for a restart",
		value: func(c *Config) flag.Value { return signalVar(&c.Exec.StopSignal) }}
	gracePeriod = &setting{name: "grace-period", env: "TOKEND_EXEC_GRACE_PERIOD", def: "10s", usage: "how long a stopping child has before SIGKILL",
		value: func(c *Config) flag.Value { return durationVar(&c.Exec.Grace) }, bad: badDuration,
		form: positive(func(c *Config) time.Duration { return c.Exec.Grace })}
	execSpecs = []*setting{tokenFileEnv, tokenEnv, changePolicy, reloadSignal, stopSignal, gracePeriod}

	refreshTimeout = &setting{name: "timeout", env: "TOKEND_REFRESH_TIMEOUT", def: "30s", usage: "how long to wait for the answer",
		value: func(c *Config) flag.Value { return durationVar(&c.RefreshTimeout) }, bad: badDuration,
		form: positive(func(c *Config) time.Duration { return c.RefreshTimeout })}
	refreshSpecs = []*setting{
		{name: "refresh-socket", env: "TOKEND_REFRESH_SOCKET", usage: "socket of the running tokend (default <dir of --token-file>/.tokend.sock)",
			value: func(c *Config) flag.Value { return stringVar(&c.Consumers.RefreshSocket) }},
		{name: "token-file", env: "TOKEND_TOKEN_FILE", def: defaultTokenFile, usage: "token file, whose directory holds the socket",
			value: func(c *Config) flag.Value { return stringVar(&c.TokenFile) }},
		refreshTimeout,
	}
)

func init() {
	summaries[CmdExec] = "Keep the token file fresh as run does, and run CMD (after --) once the first token is written; tokend exits with CMD's status."
	summaries[CmdRefresh] = "Ask the running tokend for an exchange now over its --refresh-socket; exit 0 once it succeeded."
}

// ParseExec parses `tokend exec [flags] -- CMD [ARGS...]` as Parse does.
func ParseExec(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	return ParseExecEnv(args, func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}, out)
}

// ParseExecEnv is ParseExec with os.LookupEnv semantics, as ParseEnv is
// Parse's: TOKEND_HEALTH_ADDR set but empty disables the health server.
func ParseExecEnv(args []string, lookupenv func(string) (string, bool), out io.Writer) (*Config, error) {
	i := slices.Index(args, "--")
	if i < 0 || i == len(args)-1 {
		flags := args
		if i >= 0 {
			flags = args[:i]
		}
		if _, err := ParseEnv(CmdExec, flags, lookupenv, out); errors.Is(err, flag.ErrHelp) {
			return nil, err // -h asked for the flags, not for a command
		}
		return nil, &Error{Problems: []error{fmt.Errorf("the command to run is missing: tokend exec [flags] -- CMD [ARGS...]")}}
	}
	c, err := ParseEnv(CmdExec, args[:i], lookupenv, out)
	if err != nil {
		return nil, err
	}
	c.Exec.Argv = slices.Clone(args[i+1:])
	return c, nil
}

// buildConsumers checks the settings of consumerSpecs and onChangeSpecs
// (run) that depend on one another.
func (c *Config) buildConsumers(p *problems) {
	k := &c.Consumers
	sig, pidFile := c.get(notifySignal), c.get(notifyPIDFile)
	switch {
	case sig != "" && pidFile == "":
		p.add(notifyPIDFile, "required with --notify-signal: the file the consumer writes its pid to")
	case sig == "" && pidFile != "":
		p.add(notifySignal, "required with --notify-pid-file: the signal the consumer reloads on, e.g. SIGHUP")
	case sig != "":
		var err error
		if k.NotifySignal, err = parseSignal(sig); err != nil {
			p.add(notifySignal, "%v", err)
		}
		k.NotifyPIDFile = pidFile
	}
	if raw := c.get(onChange); c.Command == CmdRun && raw != "" {
		argv, err := notify.ParseArgv(raw)
		if err != nil {
			p.add(onChange, "%v", err)
		}
		k.OnChange = argv
	}
}

var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH, "ALRM": syscall.SIGALRM,
}

// parseSignal parses a signal name (SIGHUP, HUP, hup) or number.
func parseSignal(raw string) (syscall.Signal, error) {
	up := strings.TrimPrefix(strings.ToUpper(raw), "SIG")
	if s, ok := signals[up]; ok {
		return s, nil
	}
	if n, err := strconv.Atoi(raw); err == nil && n > 0 && n < 65 && n != int(syscall.SIGKILL) && n != int(syscall.SIGSTOP) {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("%q is not a signal tokend sends: use HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM or a number", raw)
}

// signalVar is a flag.Func value that parses a signal into p.
func signalVar(p *syscall.Signal) flag.Value {
	return funcVar(func(s string) (err error) {
		*p, err = parseSignal(s)
		return err
	})
}

// envNameForm checks a variable name; empty is fine.
func envNameForm(_ *Config, v string) string {
	if v != "" && !envName(v) {
		return fmt.Sprintf("%q is not a variable name: use letters, digits and _, not starting with a digit", v)
	}
	return ""
}

func envName(s string) bool {
	for i, r := range s {
		if r != '_' && !(r >= 'A' && r <= 'Z') && !(r >= 'a' && r <= 'z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// SecretEnv returns the environment variables that carry tokend's own
// credentials, which processes tokend starts must not inherit.
func SecretEnv() []string {
	var names []string
	for _, s := range exchangeSettings() {
		for _, src := range s.sources() {
			if s.secret && src.env != "" {
				names = append(names, src.env)
			}
		}
	}
	return names
}
