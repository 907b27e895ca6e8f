// Command pause is the pod sandbox's first process in scripts/e2e-kubelet.sh,
// where no registry serves the usual pause image. containerd starts it as
// PID 1 of each pod's sandbox: it holds the pod's namespaces open, reaps
// every orphan that the kernel hands to it (with shareProcessNamespace the
// pod's containers are its descendants), and exits 0 on SIGTERM or SIGINT,
// as the kubelet's sandbox teardown expects.
//
// It takes no arguments, and prints a line to stderr once it handles the
// signals, one for each child it reaps, and one when it stops.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	fmt.Fprintln(os.Stderr, "pause: waiting for SIGTERM")
	for s := range sigs {
		if s != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: %v, exiting\n", s)
			return
		}
		reap()
	}
}

// reap collects every child that has exited. Signals coalesce, so one
// SIGCHLD may stand for several.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "pause: reaped %d\n", pid)
	}
}
