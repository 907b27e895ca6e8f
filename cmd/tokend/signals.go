package main

import (
	"os"
	"os/signal"
	"syscall"
)

// refreshSignals starts relaying SIGHUP and SIGUSR1, the signals that ask
// `tokend run` and `tokend exec` for an exchange now instead of ending
// them, to the returned channel for daemon.Deps.RefreshSignals, until stop
// is called.
func refreshSignals() (sigs <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1)
	return ch, func() { signal.Stop(ch) }
}
