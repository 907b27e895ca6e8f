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
	consumerSpecs = []spec{
		{name: "notify-signal", env: "TOKEND_NOTIFY_SIGNAL", usage: "signal sent to the process in --notify-pid-file on each token change, e.g. SIGHUP"},
		{name: "notify-pid-file", env: "TOKEND_NOTIFY_PID_FILE", usage: "file holding the pid to signal, re-read each time (needs shareProcessNamespace)"},
		{name: "refresh-socket", env: "TOKEND_REFRESH_SOCKET", usage: "serve refresh requests on this Unix socket, e.g. <token dir>/" + ".tokend.sock; empty disables"},
		{name: "remove-on-exit", env: "TOKEND_REMOVE_ON_EXIT", def: "false", isBool: true, usage: "remove the token file when tokend stops"},
	}
	onChangeSpecs = []spec{
		{name: "on-change", env: "TOKEND_ON_CHANGE", usage: `command run without a shell on each token change: words split at spaces, or a JSON array ["prog","arg"]`},
		{name: "on-change-timeout", env: "TOKEND_ON_CHANGE_TIMEOUT", def: "30s", usage: "how long --on-change may run before it is killed"},
	}
	execSpecs = []spec{
		{name: "token-file-env", env: "TOKEND_EXEC_TOKEN_FILE_ENV", def: "TOKEND_TOKEN_FILE", usage: "variable that gives the child the token file's path"},
		{name: "token-env", env: "TOKEND_EXEC_TOKEN_ENV", usage: "variable that gives the child the token itself, read once at its start; empty: none"},
		{name: "change-policy", env: "TOKEND_EXEC_CHANGE_POLICY", def: "none", usage: "on a token change: none, signal (--reload-signal) or restart (--stop-signal, --grace-period)"},
		{name: "reload-signal", env: "TOKEND_EXEC_RELOAD_SIGNAL", def: "SIGHUP", usage: "signal sent to the child by --change-policy signal"},
		{name: "stop-signal", env: "TOKEND_EXEC_STOP_SIGNAL", def: "SIGTERM", usage: "signal that stops the child for a restart"},
		{name: "grace-period", env: "TOKEND_EXEC_GRACE_PERIOD", def: "10s", usage: "how long a stopping child has before SIGKILL"},
	}
	refreshSpecs = []spec{
		{name: "refresh-socket", env: "TOKEND_REFRESH_SOCKET", usage: "socket of the running tokend (default <dir of --token-file>/.tokend.sock)"},
		{name: "token-file", env: "TOKEND_TOKEN_FILE", def: "/var/run/ambient/token", usage: "token file, whose directory holds the socket"},
		{name: "timeout", env: "TOKEND_REFRESH_TIMEOUT", def: "30s", usage: "how long to wait for the answer"},
	}
)

func init() {
	summaries[CmdExec] = "Keep the token file fresh as run does, and run CMD (after --) once the first token is written; tokend exits with CMD's status."
	summaries[CmdRefresh] = "Ask the running tokend for an exchange now over its --refresh-socket; exit 0 once it succeeded."
}

// ParseExec parses `tokend exec [flags] -- CMD [ARGS...]` as Parse does.
func ParseExec(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	i := slices.Index(args, "--")
	if i < 0 || i == len(args)-1 {
		flags := args
		if i >= 0 {
			flags = args[:i]
		}
		if _, err := Parse(CmdExec, flags, getenv, out); errors.Is(err, flag.ErrHelp) {
			return nil, err // -h asked for the flags, not for a command
		}
		return nil, &Error{Problems: []error{fmt.Errorf("the command to run is missing: tokend exec [flags] -- CMD [ARGS...]")}}
	}
	c, err := Parse(CmdExec, args[:i], getenv, out)
	if err != nil {
		return nil, err
	}
	c.Exec.Argv = slices.Clone(args[i+1:])
	return c, nil
}

// buildConsumers reads the settings of consumerSpecs, onChangeSpecs (run)
// and execSpecs (exec).
func (c *Config) buildConsumers(p *problems, get func(string) string) {
	k := &c.Consumers
	k.RefreshSocket = get("refresh-socket")
	k.RemoveOnExit = boolean(p, get, "remove-on-exit")
	sig, pidFile := get("notify-signal"), get("notify-pid-file")
	switch {
	case sig != "" && pidFile == "":
		p.add("notify-pid-file", "required with --notify-signal: the file the consumer writes its pid to")
	case sig == "" && pidFile != "":
		p.add("notify-signal", "required with --notify-pid-file: the signal the consumer reloads on, e.g. SIGHUP")
	case sig != "":
		k.NotifySignal, k.NotifyPIDFile = parseSignal(p, "notify-signal", sig), pidFile
	}
	if c.Command == CmdRun {
		if raw := get("on-change"); raw != "" {
			argv, err := notify.ParseArgv(raw)
			if err != nil {
				p.add("on-change", "%v", err)
			}
			k.OnChange = argv
		}
		k.OnChangeTimeout = duration(p, get, "on-change-timeout", false)
		return
	}
	c.buildExec(p, get)
}

func (c *Config) buildExec(p *problems, get func(string) string) {
	e := &c.Exec
	e.TokenFileEnv, e.TokenEnv = get("token-file-env"), get("token-env")
	for _, name := range []string{"token-file-env", "token-env"} {
		if v := get(name); v != "" && !envName(v) {
			p.add(name, "%q is not a variable name: use letters, digits and _, not starting with a digit", v)
		}
	}
	e.Policy = child.Policy(get("change-policy"))
	if !slices.Contains([]child.Policy{child.PolicyNone, child.PolicySignal, child.PolicyRestart}, e.Policy) {
		p.add("change-policy", "must be none, signal or restart, not %q", e.Policy)
	}
	e.ReloadSignal = parseSignal(p, "reload-signal", get("reload-signal"))
	e.StopSignal = parseSignal(p, "stop-signal", get("stop-signal"))
	e.Grace = duration(p, get, "grace-period", false)
}

// buildRefresh reads the settings of tokend refresh.
func (c *Config) buildRefresh(p *problems, get func(string) string) {
	c.Consumers.RefreshSocket = get("refresh-socket")
	c.RefreshTimeout = duration(p, get, "timeout", false)
}

var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH, "ALRM": syscall.SIGALRM,
}

// parseSignal parses a signal name (SIGHUP, HUP, hup) or number.
func parseSignal(p *problems, name, raw string) syscall.Signal {
	up := strings.TrimPrefix(strings.ToUpper(raw), "SIG")
	if s, ok := signals[up]; ok {
		return s
	}
	if n, err := strconv.Atoi(raw); err == nil && n > 0 && n < 65 && n != int(syscall.SIGKILL) && n != int(syscall.SIGSTOP) {
		return syscall.Signal(n)
	}
	p.add(name, "%q is not a signal tokend sends: use HUP, INT, QUIT, TERM, USR1, USR2, WINCH, ALRM or a number", raw)
	return 0
}

func boolean(p *problems, get func(string) string, name string) bool {
	b, err := strconv.ParseBool(get(name))
	if err != nil {
		p.add(name, "must be true or false, not %q", get(name))
	}
	return b
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
	for _, s := range exchangeSpecs {
		if s.secret && s.env != "" {
			names = append(names, s.env)
		}
	}
	return names
}
