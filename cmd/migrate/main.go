// Command migrate applies the wallet's embedded database migrations and
// exits: the migration job of Compose and Kubernetes. It is safe to run
// twice and from several processes at once.
package main

import (
	"context"
	"os"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/lifecycle"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	lifecycle.Exit(config.Migrate, run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) error {
	proc, err := lifecycle.Begin(ctx, config.Migrate, version, args)
	if err != nil {
		return err
	}
	defer proc.Close()
	ctx, cfg, log := proc.Ctx, proc.Cfg, proc.Log
	return lifecycle.MigrateDB(ctx, log, cfg)
}
