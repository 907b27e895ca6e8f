package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	"github.com/ambient-code/tokend/internal/listen"
)

// ListenMode opens the proxy's listener for addr, as given by
// --proxy-listen:
//
//   - "unix:PATH": a Unix socket at PATH with mode (connecting needs
//     write permission), as listen.Unix makes it.
//   - "HOST:PORT": TCP, where HOST is a loopback address (127.0.0.0/8, ::1)
//     or "localhost". Any other host, an empty one included, is refused:
//     the proxy adds the token to every request it gets, so only this pod
//     may reach it. PORT 0 picks a free port.
//
// Errors name --proxy-listen and say the fix.
func ListenMode(addr string, mode fs.FileMode) (net.Listener, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, fmt.Errorf("proxy: --proxy-listen %w", err)
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		ln, err := listen.Unix(path, mode, "--proxy-listen")
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: --proxy-listen %q: %w: choose a free port", addr, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("proxy: --proxy-listen %q resolved to %s, not a loopback address: use 127.0.0.1:PORT", addr, ln.Addr())
	}
	return ln, nil
}

// CheckAddr returns why Listen refuses addr by its form alone, without
// binding it: neither HOST:PORT nor unix:PATH, a host that is not
// loopback, or no path. The error is a phrase that quotes addr and says
// the fix, for the caller to prefix with the setting's name.
func CheckAddr(addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return errors.New(`"unix:" has no path: use unix:PATH, e.g. unix:/var/run/tokend/proxy.sock`)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is neither HOST:PORT nor unix:PATH: use 127.0.0.1:PORT or unix:PATH", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address, and the proxy adds the token to every request it gets: use 127.0.0.1:PORT, [::1]:PORT or unix:PATH", addr)
	}
	return nil
}
