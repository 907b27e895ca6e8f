package config

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// setting is one setting: a flag with an environment fallback. Settings are
// package variables, and code names them by identifier, so a misspelt
// setting does not compile.
type setting struct {
	name  string // flag name, without dashes
	env   string // environment variable, "" for flag-only settings
	def   string // default, as text, parsed like any other value
	usage string
	// also lists further flags and variables that feed this same setting
	// (see caBundle); a flag with no variable has env "", a variable with no
	// flag has flag "".
	also []source
	// conflictFix ends the problem of two sources that differ.
	conflictFix string
	// secret: a credential. Nothing prints it, and processes tokend starts
	// do not inherit its variable (SecretEnv).
	secret bool
	// emptyOK: the variable set but empty is a value (not the default);
	// any other empty variable counts as unset.
	emptyOK bool
	// value returns the typed flag.Value (flag's DurationVar, BoolVar,
	// TextVar, Func...) that parses the text into c; nil for a setting
	// kept as text (Config.text).
	value func(c *Config) flag.Value
	// bad is the problem for a text that value refuses, %q being the
	// text; when empty, the value's own error is the problem.
	bad string
	// form, when set, judges the parsed value alone and returns the
	// problem, or "" when there is none; raw is the text.
	form func(c *Config, raw string) string
	// shared: every command judges the setting (value and form) when its
	// variable is set, even a command that does not read it (given.go).
	shared bool
}

// source is one flag and one variable that feed a setting.
type source struct{ flag, env string }

func (s *setting) sources() []source {
	return append([]source{{s.name, s.env}}, s.also...)
}

// label names a setting's source as messages do: "ENV (--flag)", "--flag"
// or "ENV".
func (src source) label() string {
	switch {
	case src.env == "":
		return "--" + src.flag
	case src.flag == "":
		return src.env
	}
	return src.env + " (--" + src.flag + ")"
}

// scratch returns the flag.Value that define registers on a throwaway
// FlagSet, so that settings parse with flag's own typed values.
func scratch(define func(fs *flag.FlagSet)) flag.Value {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	define(fs)
	return fs.Lookup("v").Value
}

func stringVar(p *string) flag.Value {
	return scratch(func(fs *flag.FlagSet) { fs.StringVar(p, "v", "", "") })
}

func durationVar(p *time.Duration) flag.Value {
	return scratch(func(fs *flag.FlagSet) { fs.DurationVar(p, "v", 0, "") })
}

func boolVar(p *bool) flag.Value {
	return scratch(func(fs *flag.FlagSet) { fs.BoolVar(p, "v", false, "") })
}

func levelVar(p *slog.Level) flag.Value {
	return scratch(func(fs *flag.FlagSet) { fs.TextVar(p, "v", slog.LevelInfo, "") })
}

func funcVar(set func(string) error) flag.Value {
	return scratch(func(fs *flag.FlagSet) { fs.Func("v", "", set) })
}

// Problems for values that flag's typed values refuse.
const (
	badDuration = "must be a Go duration such as 30s or 5m, not %q"
	badBool     = "must be true or false, not %q"
)

// positive is the form of a duration that must be more than zero.
func positive(d func(c *Config) time.Duration) func(*Config, string) string {
	return func(c *Config, raw string) string {
		if d(c) <= 0 {
			return fmt.Sprintf("must be positive, not %s", raw)
		}
		return ""
	}
}

// isBool reports whether s's flag takes no argument.
func isBool(s *setting) bool {
	if s.value == nil {
		return false
	}
	b, ok := s.value(&Config{}).(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

var (
	logFormat = &setting{name: "log-format", env: "LOG_FORMAT", def: "text", usage: "text or json",
		value: func(c *Config) flag.Value { return stringVar(&c.LogFormat) },
		form: func(c *Config, raw string) string {
			if c.LogFormat != "text" && c.LogFormat != "json" {
				return fmt.Sprintf("must be text or json, not %q", raw)
			}
			return ""
		}}
	logLevel = &setting{name: "log-level", env: "LOG_LEVEL", def: "info", usage: "debug, info, warn or error",
		value: func(c *Config) flag.Value { return levelVar(&c.LogLevel) }, bad: "must be debug, info, warn or error, not %q"}
)

// specsFor returns the settings of command, in help order; nil for an
// unknown command.
func specsFor(command string) []*setting {
	var s []*setting
	switch command {
	case CmdInit:
		s = append(s, exchangeSettings()...)
		s = append(s, fileSpecs...)
	case CmdRun:
		s = append(s, exchangeSettings()...)
		s = append(s, fileSpecs...)
		s = append(s, runSpecs...)
		s = append(s, consumerSpecs...)
		s = append(s, onChangeSpecs...)
		s = append(s, proxySpecs...)
	case CmdCheck:
		s = append(s, checkSpecs...)
	case CmdExec: // consumers: see exec.go
		s = append(s, exchangeSettings()...)
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
	return append(s, logFormat, logLevel)
}

var summaries = map[string]string{
	CmdInit:  "Exchange once (retrying transient failures until --init-timeout), write the token file, and exit.",
	CmdRun:   "Exchange, write the token file, and keep it fresh until SIGTERM or SIGINT; SIGHUP or SIGUSR1 refreshes now.",
	CmdCheck: "Exit 0 when the token file exists, is non-empty and not expired; for exec probes.",
}

// usage prints a command's help: static defaults only, never a value taken
// from the environment.
func usage(w io.Writer, command string, specs []*setting) {
	fmt.Fprintf(w, "Usage: tokend %s [flags]\n\n%s\n\nFlags (each falls back to its environment variable):\n", command, summaries[command])
	for _, s := range specs {
		def := ""
		if s.def != "" {
			def = " (default " + s.def + ")"
		}
		var envs []string
		for _, src := range s.sources() {
			if src.env != "" {
				envs = append(envs, "$"+src.env)
			}
		}
		env := ""
		if len(envs) > 0 {
			env = " [" + strings.Join(envs, ", ") + "]"
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
