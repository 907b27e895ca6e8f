package config

import (
	"fmt"
	"net"
	"slices"
)

// checkGiven judges the shared settings (setting.shared) that command does
// not read but that lookupenv holds a non-empty value for. An init
// container and its sidecar share one environment, so init validates what
// run will read (and check what both read): a typo stops the pod at init.
// Settings not shared (URLs, keys, paths, secrets) are judged only by the
// commands that use them.
func checkGiven(p *problems, command string, lookupenv func(string) (string, bool)) {
	own := specsFor(command)
	var done []string
	for _, cmd := range []string{CmdInit, CmdRun, CmdCheck} {
		for _, s := range specsFor(cmd) {
			if !s.shared || slices.Contains(done, s.name) ||
				slices.ContainsFunc(own, func(o *setting) bool { return o.name == s.name }) {
				continue
			}
			if v, ok := lookupenv(s.env); ok && v != "" {
				done = append(done, s.name)
				var scratch Config
				scratch.read(p, s, nil, lookupenv)
			}
		}
	}
}

// healthAddrForm checks a listen address; empty (disabled) is fine.
func healthAddrForm(_ *Config, addr string) string {
	if addr == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Sprintf("must be host:port or :port, not %q (empty disables)", addr)
	}
	return ""
}
