package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ShutdownSignals are the signals that start a graceful stop: SIGTERM from
// Kubernetes and Docker, SIGINT from a terminal, and SIGHUP, which the 2020
// service used.
var ShutdownSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP}

// exit is os.Exit, replaced in tests.
var exit = osExit

// osExit is kept apart so tests can restore exit.
var osExit = os.Exit

// forceGrace is how long after the shutdown timeout the watchdog waits
// before ending a process whose graceful stop has hung.
const forceGrace = 2 * time.Second

// OnSignals returns a context cancelled at the first shutdown signal. From
// then on a second signal ends the process at once (status 1), and so does a
// graceful stop that outlives timeout, so a hung stop can never keep a pod
// alive until Kubernetes kills it. Call stop when the program has stopped.
func OnSignals(parent context.Context, log *zap.Logger, timeout time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, ShutdownSignals...)
	done := make(chan struct{})
	go func() {
		var deadline <-chan time.Time
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				if deadline != nil {
					log.Error("second signal: exiting at once", zap.String("signal", s.String()))
					exit(exitFailed)
					return
				}
				log.Info("signal received: stopping gracefully",
					zap.String("signal", s.String()), zap.Duration("shutdown_timeout", timeout))
				cancel()
				deadline = time.After(timeout + forceGrace)
			case <-deadline:
				log.Error("graceful stop did not finish in time: exiting", zap.Duration("shutdown_timeout", timeout))
				exit(exitFailed)
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// ShutdownContext returns the context for the graceful stop that follows
// ctx's cancellation: it keeps ctx's values and ends after timeout.
func ShutdownContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
