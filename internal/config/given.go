package config

import (
	"net"
	"slices"
	"strconv"
)

// givenElsewhere returns the settings that command does not read but that
// lookupenv holds a non-empty value for, with those values. An init
// container and its sidecar share one environment, so init validates what
// run will read (and check what both read): a typo stops the pod at init.
func givenElsewhere(command string, lookupenv func(string) (string, bool)) ([]spec, map[string]string) {
	own := specsFor(command)
	var given []spec
	vals := map[string]string{}
	for _, cmd := range []string{CmdInit, CmdRun, CmdCheck} {
		for _, s := range specsFor(cmd) {
			if s.env == "" || syntax[s.name] == nil || vals[s.name] != "" ||
				slices.ContainsFunc(own, func(o spec) bool { return o.name == s.name }) {
				continue
			}
			if v, ok := lookupenv(s.env); ok && v != "" {
				given = append(given, s)
				vals[s.name] = v
			}
		}
	}
	return given, vals
}

// syntax checks the form of the settings that a command may find in its
// environment without using them. Settings not listed here (URLs, keys,
// paths, secrets) are judged only by the commands that use them.
var syntax = map[string]func(p *problems, get func(string) string, name string){
	"refresh-interval": positiveDuration,
	"init-timeout":     positiveDuration,
	"max-backoff":      positiveDuration,
	"max-age":          func(p *problems, get func(string) string, name string) { duration(p, get, name, true) },
	"health-addr":      func(p *problems, get func(string) string, name string) { healthAddr(p, get(name)) },
	"file-mode":        func(p *problems, get func(string) string, name string) { fileMode(p, get(name)) },
	"allow-insecure-http": func(p *problems, get func(string) string, name string) {
		if _, err := strconv.ParseBool(get(name)); err != nil {
			p.add(name, "must be true or false, not %q", get(name))
		}
	},
	"auth": func(p *problems, get func(string) string, name string) {
		if a := get(name); a != AuthEncryptedSession && a != AuthServiceAccount {
			p.add(name, "must be %s or %s, not %q", AuthEncryptedSession, AuthServiceAccount, a)
		}
	},
}

func positiveDuration(p *problems, get func(string) string, name string) {
	duration(p, get, name, false)
}

// healthAddr checks a listen address; empty (disabled) is fine.
func healthAddr(p *problems, addr string) {
	if addr == "" {
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.add("health-addr", "must be host:port or :port, not %q (empty disables)", addr)
	}
}

// checkGiven validates the settings of other commands found in the
// environment (see givenElsewhere).
func checkGiven(p *problems, get func(string) string, given []spec) {
	for _, s := range given {
		p.byName[s.name] = s
		syntax[s.name](p, get, s.name)
	}
}
