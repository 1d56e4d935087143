// Command worker consumes the requests stream and applies requests to
// PostgreSQL in batches, exactly once. Run as many as you like: partitions
// are balanced over the live workers. It serves /metrics, /healthz and
// /readyz on --metrics-port.
package main

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/lifecycle"
	"github.com/wallet/wallet/internal/natsbus"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == lifecycle.HealthcheckCommand {
		os.Exit(lifecycle.Healthcheck(config.Worker, os.Args[2:], os.Stderr))
	}
	lifecycle.Exit(config.Worker, run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) (err error) {
	proc, err := lifecycle.Begin(ctx, config.Worker, version, args)
	if err != nil {
		return err
	}
	defer proc.Close()
	ctx, cfg, log := proc.Ctx, proc.Cfg, proc.Log

	// The health server comes first, so probes answer (unready) while the
	// dependencies are still being reached.
	ready := lifecycle.NewReadiness()
	reg := lifecycle.NewRegistry()
	ops, err := lifecycle.Listen("metrics", net.JoinHostPort("", strconv.Itoa(cfg.MetricsPort)), lifecycle.OpsHandler(ready, reg))
	if err != nil {
		return err
	}
	ops.Start(log)
	defer func() { _ = ops.Stop(context.Background()) }()
	store, err := lifecycle.OpenStore(ctx, log, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := lifecycle.AwaitSchema(ctx, log, store, cfg.SchemaWait); err != nil {
		return err
	}
	nc, err := lifecycle.ConnectNATS(ctx, log, cfg, cfg.NATS.URL, "wallet-worker", natsbus.RoleWorker)
	if err != nil {
		return err
	}
	defer nc.Close()

	w, err := lifecycle.StartWorker(ctx, log, cfg, store, nc, reg)
	if err != nil {
		return err
	}
	ready.Add(lifecycle.PostgresPing(store))
	ready.Add(lifecycle.NATSConnected(nc))
	ready.SetReady(true)
	log.Info("worker ready", zap.String("id", w.ID()), zap.String("metrics_addr", ops.Addr()))

	select {
	case <-ctx.Done():
	case err = <-ops.Done():
		log.Error("metrics server stopped", zap.Error(err))
	}

	// Unready first, then finish the batches in hand within the shutdown
	// timeout.
	ready.SetReady(false)
	if serr := w.Stop(); serr != nil {
		err = errors.Join(err, serr)
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}
