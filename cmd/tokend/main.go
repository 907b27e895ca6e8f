// Command tokend keeps a control-plane API token fresh in a file that other
// containers of a pod read.
//
//	tokend init    exchange once, write the token file, exit
//	tokend run     keep the token file fresh (the sidecar); SIGHUP or SIGUSR1 refreshes now
//	tokend exec    keep it fresh and run a command that reads it: exec -- CMD
//	tokend refresh ask the running tokend for an exchange now
//	tokend check   exit 0 when the token file holds an unexpired token
//	tokend version print the version
//
// Run `tokend help` or `tokend <command> -h` for the flags; every flag has an
// environment fallback. Exit status: 0 success, 1 runtime failure, 2 invalid
// configuration.
//
// settings.go lists every setting, flags.go parses them (the environment
// as fallback), validate.go judges them together into the daemon.Config
// that run.go hands to package daemon.
package main

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	// Non-dumpable before it reads a secret: no process without
	// CAP_SYS_PTRACE (of tokend's uid included: exec's command, a container
	// sharing the process namespace) can read its environment or memory,
	// and it leaves no core dump. Here, not in run, which tests run in-process.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	os.Exit(exitCode(run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr), os.Stderr))
}
