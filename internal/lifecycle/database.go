package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/postgres"
)

// OpenStore connects to PostgreSQL with cfg's retries, first creating the
// database when cfg.CreateDB is set.
func OpenStore(ctx context.Context, log *zap.Logger, cfg *config.Config) (*postgres.Store, error) {
	target := config.RedactURL(cfg.DB)
	log.Info("connecting to postgres", zap.String("db", target), zap.Int("attempts", cfg.DBRetryCount))
	store, err := Retry(ctx, log, "postgres", cfg.DBRetryCount, cfg.DBRetryTimeout, func(ctx context.Context) (*postgres.Store, error) {
		if cfg.CreateDB {
			created, err := postgres.CreateDatabase(ctx, cfg.DB)
			if err != nil {
				return nil, hopeless(err)
			}
			if created {
				log.Info("created database", zap.String("db", target))
			}
		}
		store, err := postgres.Open(ctx, cfg.DB, postgres.WithTracing(Tracing(cfg)))
		return store, hopeless(err)
	})
	if err == nil {
		warnAutovacuumOff(ctx, log, store)
	}
	return store, err
}

// hopeless marks as Permanent the connection errors that waiting cannot
// cure, whichever step of connecting met them: a database that does not
// exist, credentials the server refused.
func hopeless(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, postgres.ErrNoDatabase):
		return Permanent(fmt.Errorf("%w (create the database, or start with --create-db)", err))
	case errors.Is(err, postgres.ErrAuth):
		return Permanent(err)
	}
	return err
}

// warnAutovacuumOff logs a warning when the server does not vacuum and
// analyze by itself. The service stays correct without it (statements are
// planned for the tables as they are), but the accounts table, updated on
// every transfer, keeps its dead row versions until someone runs VACUUM.
func warnAutovacuumOff(ctx context.Context, log *zap.Logger, store *postgres.Store) {
	on, err := store.Autovacuum(ctx)
	if err != nil || on == "on" {
		return
	}
	log.Warn("autovacuum is off on this PostgreSQL server: run VACUUM ANALYZE on the wallet tables regularly, or turn autovacuum on",
		zap.String("autovacuum", on))
}

// MigrateDB connects with cfg's retries (creating the database when
// cfg.CreateDB is set) and applies the embedded migrations.
func MigrateDB(ctx context.Context, log *zap.Logger, cfg *config.Config) error {
	store, err := OpenStore(ctx, log, cfg)
	if err != nil {
		return err
	}
	store.Close()
	return Migrate(ctx, log, cfg)
}

// Migrate applies the embedded migrations to a database known to answer.
func Migrate(ctx context.Context, log *zap.Logger, cfg *config.Config) error {
	if err := postgres.Migrate(ctx, cfg.DB); err != nil {
		return err
	}
	log.Info("migrations applied", zap.String("db", config.RedactURL(cfg.DB)))
	return nil
}
