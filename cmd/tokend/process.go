package main

import (
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ambient-code/tokend/internal/proc"
)

// hideSecrets makes tokend's process non-dumpable (prctl PR_SET_DUMPABLE
// 0), before it reads a secret: then no process without CAP_SYS_PTRACE, of
// tokend's own uid included (the command `tokend exec` runs, a container
// sharing the pod's process namespace), can read its environment
// (/proc/<pid>/environ), memory (/proc/<pid>/mem) or attach to it, and it
// leaves no core dump. /proc/<pid>/cmdline stays readable by every process:
// a secret given as a flag is warned about (internal/config).
func hideSecrets() { _ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }

// reapAsInit makes tokend reap the orphans re-parented to it when it is PID
// 1 of its container, whatever the command (an --on-change program's
// children, say, which would otherwise stay zombies). It returns the
// release to defer.
func reapAsInit(log *slog.Logger) (release func()) {
	if os.Getpid() != 1 {
		return func() {}
	}
	return proc.Adopt(func(pid int) { log.Debug("reaped an orphan process", slog.Int("pid", pid)) })
}
