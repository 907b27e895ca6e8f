package listen

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// Unix listens on a Unix socket at path with mode (connecting needs write
// permission). A socket that a stopped process left there is removed
// first; anything else there, a socket another process still serves, or a
// path over the 107 bytes a socket path may have is refused. Closing the
// listener removes the socket. Errors name setting, the flag that gave
// path, and say the fix.
func Unix(path string, mode fs.FileMode, setting string) (*net.UnixListener, error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("%s %s is longer than the 107 bytes a socket path may have: choose a shorter path", setting, path)
	}
	switch fi, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w: choose a path in a writable directory", setting, path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("%s %s exists and is not a socket: remove it or choose another path", setting, path)
	default:
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s %s is served by another process (a second tokend?): give each tokend its own path", setting, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: cannot remove the stale socket: %w: remove it or choose another path", setting, path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: choose a path in a writable directory", setting, path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s %s: %w: choose a path in a directory tokend owns", setting, path, err)
	}
	return ln, nil
}
