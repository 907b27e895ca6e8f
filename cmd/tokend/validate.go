package main

import (
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ambient-code/tokend/internal/daemon"
	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/proxy"
	"github.com/ambient-code/tokend/internal/secret"
	"github.com/ambient-code/tokend/internal/tokendir"
)

// load reads command's settings from args (after the command name) and
// environ (as os.Environ gives them) and validates them, reporting every
// problem at once; help and flag errors go to out. It returns flag.ErrHelp,
// an *invalidError (invalid configuration), or else a runtime failure (a
// full token volume). No network: it reads the key and CA files and proves
// the token's directory writable, nothing else.
func load(command string, args, environ []string, out io.Writer) (*options, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	o := &options{Config: daemon.Config{Command: command}}
	f := &flags{FlagSet: flag.NewFlagSet("tokend "+command, flag.ContinueOnError),
		env: map[string]string{}, fromFlag: map[string]bool{}, given: map[string]bool{}}
	letter := "irefc"[slices.Index(commands, command)] // see setting.cmds
	for _, s := range o.table() {
		if strings.IndexByte(s.cmds, letter) >= 0 {
			f.add(s.to, s.name, s.env, s.def, s.usage)
		}
	}
	f.SetOutput(out)
	f.Usage = func() { f.usage(out, command) }
	if i := slices.Index(args, "--"); command == "exec" && i >= 0 {
		args, o.Exec.Argv = args[:i], slices.Clone(args[i+1:])
	}
	switch err := f.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return nil, err
	case err != nil:
		return nil, invalid(err)
	case command == "exec" && len(o.Exec.Argv) == 0:
		return nil, invalid(errors.New("the command to run is missing: tokend exec [flags] -- CMD [ARGS...]"))
	case f.NArg() > 0:
		return nil, invalid(fmt.Errorf("unexpected arguments: %q", f.Args()))
	}
	known := map[string]string{"AMBIENT_CP_CA_CERT_FILE": "AMBIENT_CP_CA_CERT_FILE"}
	for _, s := range (&options{}).table() { // another command's * settings: judged from env only, into a throwaway
		known[s.env] = label(s.name, s.env)
		if s.cmds[0] == '*' && f.Lookup(s.name) == nil {
			f.add(s.to, s.name, s.env, "", "")
		}
	}
	f.fromEnv(env)
	f.unknownVariables(env, known)
	full := o.validate(f, env)
	if len(f.errs) > 0 {
		return nil, invalid(f.errs...)
	}
	return o, full
}

// runnerInsecure is the successor runner's own opt-in for plain http
// (protocol.md section 3), honoured as a second variable of
// --allow-insecure-http.
const runnerInsecure = "AMBIENT_ALLOW_INSECURE_RUNNER_TRANSPORT"

// validate judges what depends on more than one setting, builds the
// exchanger and loads the roots, adding each problem to f. Its one error is
// a token volume out of space or inodes: a state, not a mistake (exit 1).
func (o *options) validate(f *flags, env map[string]string) error {
	c := &o.Config
	c.SecretEnv = secretEnv
	for _, name := range []string{"session-id", "public-key", "credential"} {
		if f.fromFlag[name] {
			c.Warnings = append(c.Warnings, fmt.Sprintf("--%s is a secret given as a flag: every process of the pod can read it in /proc/<pid>/cmdline, and the pod spec shows it; set %s from a Secret instead", name, f.env[name]))
		}
	}
	if c.TokenFile == "" {
		f.problemf("token-file", "required: set it to a file in the token volume, e.g. %s", defaultTokenFile)
	}
	if o.Command == "check" || o.Command == "refresh" {
		return nil
	}
	if v, ok := env[runnerInsecure]; ok && !o.allowHTTP {
		var err error
		if o.allowHTTP, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			f.problemf("allow-insecure-http", "%s must be true or false, not %q", runnerInsecure, v)
		}
	}
	if o.Command == "run" || o.Command == "exec" {
		o.validateRun(f)
	}
	c.TokenURL = o.checkTokenURL(f)
	o.loadRoots(f, env)
	c.Exchanger = o.mode(f, env)
	if path := c.JSONFile; path != "" && filepath.Clean(path) == filepath.Clean(c.TokenFile) {
		f.problemf("json-file", "%s is the token file: name another file, e.g. %s.json", path, c.TokenFile)
	} else if path != "" {
		checkWritable(f, "json-file", path)
	}
	return checkWritable(f, "token-file", c.TokenFile)
}

// checkWritable proves that a file can be written at path, as the token
// file will be: its directory exists and is writable, and the file is
// regular or absent. It returns the error of a full volume.
func checkWritable(f *flags, name, path string) error {
	if path == "" {
		return nil
	}
	err := tokendir.CheckFile(path)
	switch {
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%s: %w", f.label(name), err)
	case errors.Is(err, fs.ErrNotExist):
		f.problemf(name, "%v: create the directory, or mount the token volume there (an emptyDir the consumers mount too)", err)
	case err != nil:
		f.problemf(name, "%w", err)
	}
	return nil
}

// validateRun judges the settings of the consumers and the proxy (run,
// exec).
func (o *options) validateRun(f *flags) {
	c := &o.Config
	switch k := c.Consumers; {
	case f.given["notify-signal"] && k.NotifyPIDFile == "":
		f.problemf("notify-pid-file", "required with --notify-signal: the file the consumer writes its pid to")
	case !f.given["notify-signal"] && k.NotifyPIDFile != "":
		f.problemf("notify-signal", "required with --notify-pid-file: the signal the consumer reloads on, e.g. SIGHUP")
	}
	if c.RefreshInterval < time.Second {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s %s is under 1s: every refresh is a request to the control plane", f.label("refresh-interval"), c.RefreshInterval))
	}
	if c.Proxy.Listen == "" {
		return
	}
	u, err := proxy.ParseUpstream(o.proxyUpstream)
	switch {
	case o.proxyUpstream == "":
		f.problemf("proxy-upstream", "required with --proxy-listen: set it to the platform API server's URL, e.g. https://ambient-api-server.<ns>.svc:8443")
	case err != nil:
		f.problemf("proxy-upstream", "%w", err)
	case u.Scheme == "http" && !o.allowHTTP && !internalHost(u.Hostname()):
		f.problemf("proxy-upstream", "plain http to %s would send the token in clear: use https, an in-cluster *.svc name, or %s=true", u.Hostname(), f.label("allow-insecure-http"))
	default:
		c.Proxy.Upstream = u // the address is checked when run binds it
	}
}

// mode judges the settings of the exchange mode, warns about the settings
// of other modes, and returns the mode's exchanger, whose client trusts
// Roots; nil when a setting is invalid.
func (o *options) mode(f *flags, env map[string]string) exchange.Exchanger {
	c := &o.Config
	if modeSettings[c.Auth] == nil {
		return nil // --auth is invalid: its problem says so
	}
	var ignored []string
	for m, names := range modeSettings {
		for _, name := range names {
			if m != c.Auth && f.given[name] {
				ignored = append(ignored, f.label(name))
			}
		}
	}
	if len(ignored) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: ignored in %s mode", strings.Join(ignored, ", "), c.Auth))
	}
	ep := exchange.Endpoint{Client: exchange.NewHTTPClient(c.Roots)}
	if c.TokenURL != nil {
		ep.URL = c.TokenURL.String()
	}
	bootstrap := strings.TrimSpace(env[bootstrapEnv])
	if c.Auth == authBearer {
		return o.bearer(f, ep, bootstrap)
	}
	return o.encryptedSession(f, ep, bootstrap != "")
}

// encryptedSession judges exactly one of the key and its file, and the
// session id by the control plane's rules; successor (the successor's
// capability is in the environment) shapes the hint for a missing key.
func (o *options) encryptedSession(f *flags, ep exchange.Endpoint, successor bool) exchange.Exchanger {
	var key *rsa.PublicKey
	var err error
	switch {
	case o.publicKey != "" && o.publicKeyFile != "":
		f.problemf("public-key", "set either it or %s, not both", f.label("public-key-file"))
	case o.publicKey == "" && o.publicKeyFile == "" && successor:
		f.problemf("public-key", "required in %s mode, but %s is set, as the successor control plane sets it instead: set %s=%s (--auth %s) to send that capability",
			authEncryptedSession, bootstrapEnv, f.env["auth"], authBearer, authBearer)
	case o.publicKey == "" && o.publicKeyFile == "":
		f.problemf("public-key", "required: set it to the control plane's public key, or %s to a file holding it", f.label("public-key-file"))
	case o.publicKeyFile != "":
		if key, err = exchange.ReadPublicKeyFile(o.publicKeyFile); err != nil {
			f.problemf("public-key-file", "%w", err)
		}
	default:
		if key, err = exchange.ParsePublicKey(o.publicKey); err != nil {
			f.problemf("public-key", "%w", err)
		}
	}
	if o.sessionID == "" {
		f.problemf("session-id", "required: set it to the id of the session this pod serves")
	} else if err := exchange.CheckSessionID(o.sessionID, key); err != nil {
		f.problemf("session-id", "%w", err)
	}
	if key == nil {
		return nil
	}
	return &exchange.EncryptedSession{Endpoint: ep, PublicKey: key, PublicKeyFile: o.publicKeyFile, SessionID: secret.New(o.sessionID)}
}

// bearer judges exactly one of the credential and its file, or else
// bootstrap (the successor's capability). The file may be missing at start
// (a late secret volume; the exchange retries), but not a directory.
func (o *options) bearer(f *flags, ep exchange.Endpoint, bootstrap string) exchange.Exchanger {
	c := &o.Config
	source := f.label("credential")
	if o.credentialFile != "" {
		source = f.label("credential-file") + " " + o.credentialFile
	} else if o.credential == "" && bootstrap != "" {
		o.credential, source = bootstrap, bootstrapEnv
	}
	switch {
	case o.credential != "" && o.credentialFile != "":
		f.problemf("credential", "set either it or %s, not both", f.label("credential-file"))
	case o.credential == "" && o.credentialFile == "":
		f.problemf("credential", "required in %s mode (or TOKEND_CREDENTIAL_FILE, or %s as the successor control plane sets it): set one to the credential the control plane gave the pod",
			authBearer, bootstrapEnv)
	case o.credential != "":
		if err := exchange.CheckCredential(o.credential); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", source, err))
		}
	default:
		if fi, err := os.Stat(o.credentialFile); err == nil && fi.IsDir() {
			f.problemf("credential-file", "%s is a directory, not the credential file: name the file inside it", o.credentialFile)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			c.Warnings = append(c.Warnings, f.label("credential-file")+": "+err.Error()+"; tokend retries")
		}
	}
	return &exchange.Bearer{Endpoint: ep, Credential: secret.New(o.credential), CredentialFile: o.credentialFile, CredentialSource: source}
}

// checkTokenURL judges the token endpoint's URL by the plain-http rule:
// http is for loopback and in-cluster service names only, and never in
// bearer mode, unless allowed.
func (o *options) checkTokenURL(f *flags) *url.URL {
	const name = "token-url"
	u, err := url.Parse(o.tokenURL)
	switch {
	case o.tokenURL == "":
		f.problemf(name, "required: set it to the control plane's token endpoint, e.g. http://ambient-control-plane.<ns>.svc:8080/token")
	case err != nil:
		f.problemf(name, "not a URL: set it to the control plane's token endpoint, e.g. http://ambient-control-plane.<ns>.svc:8080/token")
	case u.Scheme != "http" && u.Scheme != "https":
		f.problemf(name, "scheme must be http or https, not %q", u.Scheme)
	case u.User != nil:
		f.problemf(name, "must not carry credentials (user info): remove the user:password@ part")
	case u.Hostname() == "":
		f.problemf(name, "has no host: name the control plane's host")
	case u.Scheme == "http" && !o.allowHTTP && !internalHost(u.Hostname()):
		f.problemf(name, "plain http to %s is refused: use https, an in-cluster *.svc name, or %s=true", u.Hostname(), f.label("allow-insecure-http"))
	case u.Scheme == "http" && !o.allowHTTP && o.Auth == authBearer:
		f.problemf(name, "plain http is refused in %s mode, whose credential is a capability valid for days: use https, or set TOKEND_ALLOW_INSECURE_HTTP=true (or %s=true) to send it in the clear", authBearer, runnerInsecure)
	default:
		return u
	}
	return nil
}

// internalHost reports whether plain http to host stays on the node or
// inside the cluster network: loopback, or a Kubernetes service name.
func internalHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return host == "localhost" || strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".svc.cluster.local")
}

// loadRoots resolves the one CA setting and, when the token URL or the
// proxy's upstream is https, loads the system roots plus its file into
// Roots: once, for every part of tokend that dials https. Five names grew
// for the setting: a flag (--ca-file, --cp-ca-file) wins over a variable
// (TOKEND_CA_FILE, AMBIENT_CP_CA_PATH, AMBIENT_CP_CA_CERT_FILE); two at the
// winning level must name one file (two CAs go in one PEM bundle).
func (o *options) loadRoots(f *flags, env map[string]string) {
	c := &o.Config
	type source struct {
		label, path string
		flag        bool
	}
	var ca source
	flagged := f.fromFlag["ca-file"] || f.fromFlag["cp-ca-file"]
	for _, s := range []source{{f.label("ca-file"), o.caFile, f.fromFlag["ca-file"]}, {f.label("cp-ca-file"), o.cpCAFile, f.fromFlag["cp-ca-file"]},
		{"AMBIENT_CP_CA_CERT_FILE", strings.TrimSpace(env["AMBIENT_CP_CA_CERT_FILE"]), false}} {
		switch {
		case s.flag != flagged || !s.flag && s.path == "": // not at the winning level
		case ca.label == "":
			ca = s
		case s.path != ca.path:
			f.errs = append(f.errs, fmt.Errorf("%s: %s differs from %s %s, and they are one setting: set only one of them, with every CA the pod needs in one PEM bundle",
				ca.label, ca.path, s.label, s.path))
		}
	}
	var err error
	switch {
	case c.TokenURL != nil && c.TokenURL.Scheme == "https" || c.Proxy.Upstream != nil && c.Proxy.Upstream.Scheme == "https":
		c.Roots, err = exchange.LoadRoots(ca.path, true)
	case ca.path != "":
		_, err = exchange.LoadRoots(ca.path, false) // the file alone
	}
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("%s: %w", ca.label, err))
	}
}
