package config

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/tokenbytes"
)

// mode is one exchange mode. Each lives in one file, mode_<name>.go, that
// registers it from an init function: its settings, their validation and
// the exchanger it builds. Adding a mode is adding such a file.
type mode struct {
	// name is the value of --auth (TOKEND_AUTH).
	name string
	// settings are the mode's own settings; other modes warn when they
	// are set (warnIgnored).
	settings []*setting
	// build validates the mode's settings in c, reporting to p, sets what
	// else of c the mode decides (TokenURL, Warnings), and
	// returns the exchanger's constructor. It runs after every other
	// exchange setting is read.
	build func(c *Config, p *problems) func(client *http.Client) exchange.Exchanger
}

// modes is the table of exchange modes, by name.
var modes = map[string]*mode{}

// register adds m to the table; it panics on a name registered twice.
func register(m *mode) {
	if modes[m.name] != nil {
		panic("config: exchange mode " + m.name + " registered twice")
	}
	modes[m.name] = m
}

// modeNames returns the registered modes' names in order.
func modeNames() []string {
	names := make([]string, 0, len(modes))
	for n := range modes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var auth = &setting{name: "auth", env: "TOKEND_AUTH", def: AuthEncryptedSession, shared: true,
	usage: "exchange mode: " + AuthEncryptedSession + " (deployed) or " + AuthBearer + " (the successor as served)",
	value: func(c *Config) flag.Value {
		return funcVar(func(s string) error {
			if modes[s] == nil {
				return fmt.Errorf("must be one of %s, not %q", strings.Join(modeNames(), ", "), s)
			}
			c.Auth = s
			return nil
		})
	}}

// warnIgnored adds one warning naming the settings of other modes that
// are set although mode m does not use them.
func (c *Config) warnIgnored(p *problems, m *mode) {
	var set []string
	for _, name := range modeNames() {
		if name == m.name {
			continue
		}
		for _, s := range modes[name].settings {
			if c.get(s) != "" && !slices.Contains(m.settings, s) {
				set = append(set, p.label(s))
			}
		}
	}
	if len(set) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: ignored in %s mode", strings.Join(set, ", "), c.Auth))
	}
}

// checkHeaderValue judges a credential that a mode sends in an HTTP header
// by the rule for a token's bytes (package tokenbytes), naming the offset
// of a bad byte, never the value.
func checkHeaderValue(p *problems, s *setting, v string) {
	var be *tokenbytes.ByteError
	if err := tokenbytes.Check(v); errors.As(err, &be) {
		p.add(s, "has a whitespace, control or non-ASCII character at offset %d (it is sent as an HTTP header)", be.Offset)
	} else if err != nil {
		p.add(s, "is %v (it is sent as an HTTP header)", err)
	}
}
