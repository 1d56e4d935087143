// Command gateway serves the wallet's HTTP API: it publishes transfer,
// deposit and withdrawal requests to NATS JetStream and reads from
// PostgreSQL. It is stateless; run as many as the load needs.
package main

import (
	"context"
	"errors"
	"os"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/lifecycle"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	lifecycle.Exit(config.Gateway, run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) (err error) {
	cfg, err := lifecycle.LoadConfig(config.Gateway, args)
	if err != nil {
		return err
	}
	log, err := lifecycle.NewLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.String("program", "gateway"), zap.String("version", version), zap.Stringer("config", cfg))

	ctx, stop := lifecycle.OnSignals(ctx, log, cfg.ShutdownTimeout)
	defer stop()
	if cfg.DebugAddr != "" {
		dbg, err := lifecycle.Listen("debug", cfg.DebugAddr, lifecycle.DebugHandler())
		if err != nil {
			return err
		}
		dbg.Start(log)
		defer func() { _ = dbg.Stop(context.Background()) }()
	}

	store, err := lifecycle.OpenStore(ctx, log, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := lifecycle.ConnectNATS(ctx, log, cfg, cfg.NATS.URL, "wallet-gateway")
	if err != nil {
		return err
	}
	defer nc.Close()

	gw, err := lifecycle.StartGateway(ctx, log, cfg, store, nc, lifecycle.NewRegistry())
	if err != nil {
		return err
	}
	log.Info("gateway ready", zap.Int("port", gw.Port()))

	select {
	case <-ctx.Done():
	case err = <-gw.Done():
	}

	// Unready first, then finish in-flight requests within the timeout.
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
