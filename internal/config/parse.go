package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

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
//
// A setting's text is its flag when given, else its variable when set,
// else its default. For a setting fed by several flags or variables
// (caBundle), all that are given at the winning level must agree.
func ParseEnv(command string, args []string, lookupenv func(string) (string, bool), out io.Writer) (*Config, error) {
	specs := specsFor(command)
	if specs == nil {
		return nil, fmt.Errorf("unknown command %q", command)
	}
	fs := flag.NewFlagSet("tokend "+command, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { usage(out, command, specs) }
	flags := map[string]*capture{}
	for _, s := range specs {
		for _, src := range s.sources() {
			if src.flag != "" {
				flags[src.flag] = &capture{isBool: isBool(s)}
				fs.Var(flags[src.flag], src.flag, s.usage)
			}
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
	c := &Config{Command: command}
	p := &problems{from: map[*setting]source{}}
	for _, s := range specs {
		c.read(p, s, flags, lookupenv)
	}
	checkGiven(p, command, lookupenv)
	return build(c, p)
}

// read sets s from its flags, its variables or its default, and judges it.
func (c *Config) read(p *problems, s *setting, flags map[string]*capture, lookupenv func(string) (string, bool)) {
	type given struct {
		src  source
		text string
	}
	var got []given
	for _, src := range s.sources() {
		if f := flags[src.flag]; f != nil && f.set {
			got = append(got, given{src, f.text})
			if s.secret {
				c.Warnings = append(c.Warnings, fmt.Sprintf("--%s is a secret given as a flag: every process of the pod can read it in /proc/<pid>/cmdline, and the pod spec shows it; set %s from a Secret instead", src.flag, src.env))
			}
		}
	}
	if len(got) == 0 {
		for _, src := range s.sources() {
			if v, ok := lookupenv(src.env); src.env != "" && ok && (v != "" || s.emptyOK) {
				got = append(got, given{src, v})
			}
		}
	}
	text := s.def
	if len(got) > 0 {
		p.from[s], text = got[0].src, strings.TrimSpace(got[0].text)
	}
	for i := 1; i < len(got); i++ {
		if g := got[i]; strings.TrimSpace(g.text) != text {
			p.add(s, "%s differs from %s %s, and they are one setting: set only one of them%s",
				text, g.src.label(), strings.TrimSpace(g.text), s.conflictFix)
		}
	}
	if c.text == nil {
		c.text = map[*setting]string{}
	}
	c.text[s] = text
	if s.value != nil {
		if err := s.value(c).Set(text); err != nil && s.bad != "" {
			p.add(s, s.bad, text)
			return
		} else if err != nil {
			p.add(s, "%v", err) // a Func value's own message
			return
		}
	}
	if s.form != nil {
		if msg := s.form(c, text); msg != "" {
			p.add(s, "%s", msg)
		}
	}
}

// capture is a flag.Value that keeps a flag's text for read. Its String is
// empty so that flag never prints a value.
type capture struct {
	text        string
	set, isBool bool
}

func (v *capture) String() string     { return "" }
func (v *capture) Set(s string) error { v.text, v.set = s, true; return nil }
func (v *capture) IsBoolFlag() bool   { return v.isBool }

// problems collects validation failures, each prefixed with the setting.
type problems struct {
	// from is the source that gave each setting its text, for labels.
	from map[*setting]source
	errs []error
}

func (p *problems) add(s *setting, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", p.label(s), fmt.Sprintf(format, args...)))
}

// label names a setting as messages do: "ENV (--flag)", or "--flag", by
// the source that gave its value.
func (p *problems) label(s *setting) string {
	if src, ok := p.from[s]; ok {
		return src.label()
	}
	return s.sources()[0].label()
}
