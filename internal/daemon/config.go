package daemon

import (
	"crypto/x509"
	"io/fs"
	"net/url"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/child"
	"github.com/ambient-code/tokend/internal/exchange"
)

// Config is what the commands run with: plain values, already validated by
// the caller (cmd/tokend fills one from the command line and the
// environment). The daemon reads no flags and no environment variables
// for it. A Config must not change while a command uses it.
type Config struct {
	// Command names the command for the log: "init", "run" or "exec".
	Command string

	// Exchanger performs the exchanges (init, run, exec); Deps.Exchanger
	// replaces it.
	Exchanger exchange.Exchanger
	// Auth names the exchange mode and TokenURL is the token endpoint, for
	// the log.
	Auth     string
	TokenURL *url.URL
	// Roots are trusted for https by the credential proxy (the
	// Exchanger's client holds its own); nil means the system roots.
	Roots *x509.CertPool
	// RefreshInterval is the longest time between exchanges (run, exec).
	RefreshInterval time.Duration
	// InitTimeout bounds init's first token, retries included.
	InitTimeout time.Duration
	// MaxBackoff is the longest delay between failed attempts.
	MaxBackoff time.Duration
	// HealthAddr is where run serves probes and metrics, and where check
	// asks the running daemon; "" disables both.
	HealthAddr string

	// TokenFile is the token file, written with FileMode.
	TokenFile string
	FileMode  fs.FileMode
	// MaxAge, when positive, makes check also require a successful
	// exchange within this long.
	MaxAge time.Duration

	// Consumers configures what tells other processes of a change (run,
	// exec).
	Consumers Consumers
	// Exec configures the child of exec.
	Exec ExecConfig
	// Proxy configures the credential proxy (run, exec).
	Proxy Proxy
	// JSONFile, when set, is where init, run and exec also write the token
	// and its expiry as one JSON document (tokendir.JSON), with FileMode.
	JSONFile string

	// Warnings are remarks on the configuration, logged at the start.
	Warnings []string
	// SecretEnv names the environment variables that carry tokend's own
	// credentials: the processes tokend starts do not inherit them.
	SecretEnv []string
}

// Consumers configures how run and exec tell other processes of a token
// change, and the refresh socket.
type Consumers struct {
	// NotifySignal goes to the process in NotifyPIDFile on each change;
	// zero when unset.
	NotifySignal  syscall.Signal
	NotifyPIDFile string
	// OnChange is run, without a shell, on each change (run only), for at
	// most OnChangeTimeout.
	OnChange        []string
	OnChangeTimeout time.Duration
	// RefreshSocket is the Unix socket serving refresh requests; "" off.
	RefreshSocket string
	// RemoveOnExit removes the token file when tokend stops.
	RemoveOnExit bool
}

// ExecConfig configures the child of exec.
type ExecConfig struct {
	// Argv is the command to run.
	Argv []string
	// TokenFileEnv names the variable that carries the token file's path.
	TokenFileEnv string
	// TokenEnv, when set, names a variable that carries the token itself,
	// as it was when the child started.
	TokenEnv string
	// Policy says what a token change does to the child: nothing, send
	// ReloadSignal, or restart it (StopSignal, then SIGKILL after Grace).
	Policy       child.Policy
	ReloadSignal syscall.Signal
	StopSignal   syscall.Signal
	Grace        time.Duration
}

// Proxy is the credential proxy's configuration (run and exec): off while
// Listen is empty.
type Proxy struct {
	// Listen is a loopback host:port or unix:PATH (proxy.Listen's rules).
	Listen string
	// Upstream is the platform API server the proxy forwards to.
	Upstream *url.URL
}
