package lifecycle

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/telemetry"
)

// serviceNames are the service.name each program reports its spans under.
var serviceNames = map[config.Program]string{
	config.Walletd: "walletd",
	config.Gateway: "wallet-gateway",
	config.Worker:  "wallet-worker",
}

// startTracing sets up the process's tracing when --otel-endpoint is set:
// the OTLP exporter's provider becomes OpenTelemetry's global one, which
// Tracing hands to the components, and Close flushes what it still holds.
// Without the setting nothing is set up.
func (proc *Process) startTracing(p config.Program, version string) error {
	cfg, log := proc.Cfg, proc.Log
	if cfg.OTelEndpoint == "" {
		return nil
	}
	tp, err := telemetry.Start(proc.Ctx, cfg.OTelEndpoint, serviceNames[p], version)
	if err != nil {
		return err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", zap.Error(err))
	}))
	otel.SetTracerProvider(tp)
	proc.closers = append(proc.closers, func() {
		// Bounded: a collector that is down must not hold up the exit.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			log.Warn("flush traces", zap.Error(err))
		}
	})
	log.Info("tracing on", zap.String("otel_endpoint", cfg.OTelEndpoint))
	return nil
}

// Tracing is the tracer provider the components are built with: nil, and
// so no spans at all, unless --otel-endpoint is set.
func Tracing(cfg *config.Config) trace.TracerProvider {
	if cfg.OTelEndpoint == "" {
		return nil
	}
	return otel.GetTracerProvider()
}
