// Package version reports what build of tokend is running.
//
// Version and Commit are stamped at link time:
//
//	go build -ldflags "-X github.com/ambient-code/tokend/internal/version.Version=v1.2.3 \
//	    -X github.com/ambient-code/tokend/internal/version.Commit=abc1234" ./cmd/tokend
//
// When they are not stamped, Get falls back to the module and VCS information
// that the Go toolchain embeds.
package version

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are stamped at link time; see the package documentation.
var Version, Commit string

// Info describes the running build.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
}

// Get returns the build information, with "devel" and "unknown" for what
// is not known.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "(devel)" {
			info.Version = cmp.Or(info.Version, bi.Main.Version)
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Commit = cmp.Or(info.Commit, s.Value)
			}
		}
	}
	info.Version = cmp.Or(info.Version, "devel")
	info.Commit = cmp.Or(info.Commit, "unknown")
	return info
}

// String formats the information on one line, for `tokend version`.
func (i Info) String() string {
	return fmt.Sprintf("tokend %s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}
