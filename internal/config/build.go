package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/filewriter"
)

const defaultTokenFile = "/var/run/ambient/token"

var (
	tokenURL = &setting{name: "token-url", env: "AMBIENT_CP_TOKEN_URL",
		usage: "control plane token endpoint URL (required)"}
	allowInsecureHTTP = &setting{name: "allow-insecure-http", env: "TOKEND_ALLOW_INSECURE_HTTP", def: "false", shared: true,
		also:  []source{{"", "AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT"}}, // the successor's runner's opt-in
		usage: "allow plain http to hosts other than loopback and *.svc cluster names, and in " + AuthBearer + " mode at all",
		value: func(c *Config) flag.Value { return boolVar(&c.AllowInsecureHTTP) }, bad: badBool}
	initTimeout = &setting{name: "init-timeout", env: "TOKEND_INIT_TIMEOUT", def: "60s", shared: true,
		usage: "how long the first exchange may take, retries included",
		value: func(c *Config) flag.Value { return durationVar(&c.InitTimeout) }, bad: badDuration,
		form: positive(func(c *Config) time.Duration { return c.InitTimeout })}
	maxBackoff = &setting{name: "max-backoff", env: "TOKEND_MAX_BACKOFF", def: "30s", shared: true,
		usage: "longest delay between failed attempts",
		value: func(c *Config) flag.Value { return durationVar(&c.MaxBackoff) }, bad: badDuration,
		form: positive(func(c *Config) time.Duration { return c.MaxBackoff })}

	tokenFile = &setting{name: "token-file", env: "TOKEND_TOKEN_FILE", def: defaultTokenFile, usage: "token file to write",
		value: func(c *Config) flag.Value { return stringVar(&c.TokenFile) }}
	fileMode = &setting{name: "file-mode", env: "TOKEND_FILE_MODE", def: "0640", shared: true, usage: "token file permissions, octal",
		value: func(c *Config) flag.Value { return funcVar(func(s string) error { return c.setFileMode(s) }) },
		bad:   "must be an octal mode such as 0640, not %q", form: fileModeForm}
	fileSpecs = []*setting{tokenFile, fileMode, jsonFile}

	refreshInterval = &setting{name: "refresh-interval", env: "TOKEND_REFRESH_INTERVAL", def: "5m", shared: true,
		usage: "refresh cadence (sooner when the token expires sooner)",
		value: func(c *Config) flag.Value { return durationVar(&c.RefreshInterval) }, bad: badDuration,
		form: positive(func(c *Config) time.Duration { return c.RefreshInterval })}
	healthAddr = &setting{name: "health-addr", env: "TOKEND_HEALTH_ADDR", def: ":12081", emptyOK: true, shared: true,
		usage: "listen address for /livez, /readyz, /startupz and /metrics; empty disables",
		value: func(c *Config) flag.Value { return stringVar(&c.HealthAddr) }, form: healthAddrForm}
	runSpecs = []*setting{refreshInterval, healthAddr}

	checkTokenFile = &setting{name: "token-file", env: "TOKEND_TOKEN_FILE", def: defaultTokenFile, usage: "token file to check",
		value: func(c *Config) flag.Value { return stringVar(&c.TokenFile) }}
	maxAge = &setting{name: "max-age", env: "TOKEND_CHECK_MAX_AGE", def: "0s", shared: true,
		usage: "also require a successful exchange within this long, as tokend run reports it (0 disables)",
		value: func(c *Config) flag.Value { return durationVar(&c.MaxAge) }, bad: badDuration,
		form: func(c *Config, raw string) string {
			if c.MaxAge < 0 {
				return "must be positive, not " + raw
			}
			return ""
		}}
	checkHealthAddr = &setting{name: "health-addr", env: "TOKEND_HEALTH_ADDR", def: ":12081", emptyOK: true, shared: true,
		usage: "probe listener of tokend run, asked for the token's expiry and last exchange; empty: judge the file alone",
		value: func(c *Config) flag.Value { return stringVar(&c.HealthAddr) }, form: healthAddrForm}
	checkSpecs = []*setting{checkTokenFile, maxAge, checkHealthAddr}
)

// exchangeSettings returns the settings of the commands that exchange:
// the mode, the token URL, every mode's own settings, and the rest.
func exchangeSettings() []*setting {
	s := []*setting{auth, tokenURL}
	for _, name := range modeNames() {
		s = append(s, modes[name].settings...)
	}
	return append(s, caBundle, allowInsecureHTTP, initTimeout, maxBackoff)
}

// build completes c once every setting is read: it checks what depends on
// more than one setting, builds the mode's exchanger, and loads the roots.
func build(c *Config, p *problems) (*Config, error) {
	if c.TokenFile == "" {
		p.add(tokenFile, "required")
	}
	switch c.Command {
	case CmdCheck:
		return c.result(p)
	case CmdRefresh: // see exec.go
		return c.result(p)
	}
	if c.Command == CmdRun || c.Command == CmdExec {
		c.buildConsumers(p) // see exec.go
		if c.RefreshInterval > 0 && c.RefreshInterval < time.Second {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s %s is under 1s: every refresh is a request to the control plane", p.label(refreshInterval), c.RefreshInterval))
		}
		c.buildProxy(p) // see proxy.go
	}
	if m := modes[c.Auth]; m != nil {
		c.exchanger = m.build(c, p)
		c.warnIgnored(p, m)
	}
	c.loadRoots(p)    // see roots.go
	c.buildOutputs(p) // see output.go
	var full error
	if c.TokenFile != "" && c.FileMode != 0 {
		if err := filewriter.New(c.TokenFile, c.FileMode).Check(); volumeFull(err) {
			full = fmt.Errorf("%s: %w", p.label(tokenFile), err)
		} else if err != nil {
			p.add(tokenFile, "%v", err)
		}
	}
	if full != nil && len(p.errs) == 0 {
		return nil, full // a runtime failure, not a configuration to fix
	}
	return c.result(p)
}

// volumeFull reports whether err is the token volume running out of space
// or inodes: the state of the volume, not a mistake in the configuration.
func volumeFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (c *Config) result(p *problems) (*Config, error) {
	if len(p.errs) > 0 {
		return nil, &Error{Problems: p.errs}
	}
	return c, nil
}

// parseTokenURL validates the token endpoint URL and the plain-http
// policy: http is for loopback and in-cluster service names only, unless
// allowed.
func parseTokenURL(p *problems, raw string, allowHTTP bool) *url.URL {
	if raw == "" {
		p.add(tokenURL, "required")
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		p.add(tokenURL, "not a URL")
		return nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(tokenURL, "scheme must be http or https, not %q", u.Scheme)
	case u.User != nil:
		p.add(tokenURL, "must not carry credentials (user info)")
	case u.Hostname() == "":
		p.add(tokenURL, "has no host")
	case u.Scheme == "http" && !allowHTTP && !internalHost(u.Hostname()):
		p.add(tokenURL, "plain http to %s is refused: use https, an in-cluster *.svc name, or --allow-insecure-http", u.Hostname())
	default:
		return u
	}
	return nil
}

// internalHost reports whether plain http to host stays on the node or
// inside the cluster network: loopback, or a Kubernetes service name.
func internalHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".svc.cluster.local")
}

// setFileMode parses an octal mode; fileModeForm judges its bits.
func (c *Config) setFileMode(raw string) error {
	m, err := strconv.ParseUint(raw, 8, 32)
	if err != nil {
		return err
	}
	c.FileMode = fs.FileMode(m)
	return nil
}

func fileModeForm(c *Config, raw string) string {
	m := c.FileMode
	msg := ""
	switch {
	case m > 0o777:
		msg = "has bits beyond 0777"
	case m&0o400 == 0:
		msg = "does not let the owner read the file"
	case m&0o022 != 0:
		msg = "lets group or others write the token"
	default:
		return ""
	}
	c.FileMode = 0
	return raw + " " + msg
}
