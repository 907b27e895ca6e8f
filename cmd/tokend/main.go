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
package main

import (
	"context"
	"os"
)

func main() {
	hideSecrets() // process.go; here, not in runEnv, which tests run in-process
	os.Exit(exitCode(runEnv(context.Background(), os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr), os.Stderr))
}
