package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ambient-code/tokend/internal/refresher"
)

// refreshSignals are the signals that ask `tokend run` for an exchange now
// instead of ending it.
var refreshSignals = []os.Signal{syscall.SIGHUP, syscall.SIGUSR1}

// onRefreshSignals starts turning refreshSignals into requests on od,
// until the returned stop is called; stop waits for the goroutine to end.
// Signals that arrive while a request is pending share its exchange, and
// the refresher holds exchanges to its floor, so a burst of signals costs
// the issuer one exchange. The refresher logs the exchange itself.
func onRefreshSignals(ctx context.Context, od *refresher.OnDemand, log *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, refreshSignals...)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				log.Info("refreshing now on signal", slog.String("signal", sig.String()))
				if _, err := od.Refresh(ctx); err != nil {
					return // ctx ended
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		cancel()
		<-done
	}
}
