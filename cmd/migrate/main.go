// Command migrate applies the wallet's embedded database migrations and
// exits: the migration job of Compose and Kubernetes. It is safe to run
// twice and from several processes at once.
package main

import (
	"context"
	"os"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/lifecycle"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	lifecycle.Exit(config.Migrate, run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) error {
	cfg, err := lifecycle.LoadConfig(config.Migrate, args)
	if err != nil {
		return err
	}
	log, err := lifecycle.NewLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.String("program", "migrate"), zap.String("version", version), zap.Stringer("config", cfg))

	ctx, stop := lifecycle.OnSignals(ctx, log, cfg.ShutdownTimeout)
	defer stop()
	return lifecycle.MigrateDB(ctx, log, cfg)
}
