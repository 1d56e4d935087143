// Command gateway serves the wallet's HTTP API: it publishes transfer,
// deposit and withdrawal requests to NATS JetStream and reads from
// PostgreSQL. It is stateless; run as many as the load needs.
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
		os.Exit(lifecycle.Healthcheck(config.Gateway, os.Args[2:], os.Stderr))
	}
	lifecycle.Exit(config.Gateway, run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) (err error) {
	proc, err := lifecycle.Begin(ctx, config.Gateway, version, args)
	if err != nil {
		return err
	}
	defer proc.Close()
	ctx, cfg, log := proc.Ctx, proc.Cfg, proc.Log

	store, err := lifecycle.OpenStore(ctx, log, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := lifecycle.AwaitSchema(ctx, log, store, cfg.SchemaWait); err != nil {
		return err
	}
	nc, err := lifecycle.ConnectNATS(ctx, log, cfg, cfg.NATS.URL, "wallet-gateway", natsbus.RoleGateway)
	if err != nil {
		return err
	}
	defer nc.Close()

	reg := lifecycle.NewRegistry()
	gw, err := lifecycle.StartGateway(ctx, log, cfg, store, nc, reg)
	if err != nil {
		return err
	}
	// The operations listener, when configured, serves /metrics without a
	// token on a port that is not the API's (Prometheus scrapes it inside
	// the cluster; the API port keeps /metrics behind a read token).
	ready := lifecycle.NewReadiness()
	var opsDone <-chan error
	if cfg.MetricsPort != 0 {
		ops, err := lifecycle.Listen("metrics", net.JoinHostPort("", strconv.Itoa(cfg.MetricsPort)), lifecycle.OpsHandler(ready, reg))
		if err != nil {
			return err
		}
		ops.Start(log)
		defer func() { _ = ops.Stop(context.Background()) }()
		opsDone = ops.Done()
		ready.Add(lifecycle.PostgresPing(store))
		ready.Add(lifecycle.NATSConnected(nc))
		ready.SetReady(true)
		log.Info("metrics listener ready", zap.String("metrics_addr", ops.Addr()))
	}
	log.Info("gateway ready", zap.Int("port", gw.Port()))

	select {
	case <-ctx.Done():
	case err = <-gw.Done():
	case err = <-opsDone:
		log.Error("metrics server stopped", zap.Error(err))
	}

	// Unready first, then finish in-flight requests within the timeout.
	ready.SetReady(false)
	gw.Drain()
	sctx, cancel := lifecycle.ShutdownContext(ctx, cfg.ShutdownTimeout)
	defer cancel()
	if serr := gw.Stop(sctx); serr != nil {
		err = errors.Join(err, serr)
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}
