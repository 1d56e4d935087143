package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/config"
	"github.com/wallet/wallet/internal/postgres"
)

// PostgreSQL error codes CreateDatabase and OpenStore tell apart.
const (
	codeDuplicateDatabase = "42P04"
	codeInvalidCatalog    = "3D000"
	codeInvalidPassword   = "28P01"
	codeInvalidAuth       = "28000"
)

// CreateDatabase creates the database named in url when it does not exist,
// connecting to the same server's maintenance database (postgres, else
// template1) with the same credentials. It reports whether it created it.
// Two processes doing this at once is fine: the loser sees the database.
func CreateDatabase(ctx context.Context, url string) (bool, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("create database: parse url: %w", err)
	}
	name := cfg.Database
	var conn *pgx.Conn
	for _, maintenance := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = maintenance
		conn, err = pgx.ConnectConfig(ctx, c)
		if err == nil || !isCode(err, codeInvalidCatalog) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // a one-statement admin connection

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if isCode(err, codeDuplicateDatabase) {
			return false, nil
		}
		return false, fmt.Errorf("create database %q (create it yourself, or grant CREATEDB): %w", name, err)
	}
	return true, nil
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// OpenStore connects to PostgreSQL with cfg's retries, first creating the
// database when cfg.CreateDB is set.
func OpenStore(ctx context.Context, log *zap.Logger, cfg *config.Config) (*postgres.Store, error) {
	target := config.RedactURL(cfg.DB)
	log.Info("connecting to postgres", zap.String("db", target), zap.Int("attempts", cfg.DBRetryCount))
	store, err := Retry(ctx, log, "postgres", cfg.DBRetryCount, cfg.DBRetryTimeout, func(ctx context.Context) (*postgres.Store, error) {
		if cfg.CreateDB {
			created, err := CreateDatabase(ctx, cfg.DB)
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
	case isCode(err, codeInvalidCatalog):
		return Permanent(fmt.Errorf("%w (create the database, or start with --create-db)", err))
	case isCode(err, codeInvalidPassword), isCode(err, codeInvalidAuth):
		return Permanent(err)
	}
	return err
}

// warnAutovacuumOff logs a warning when the server does not vacuum and
// analyze by itself. The service stays correct without it (statements are
// planned for the tables as they are), but the accounts table, updated on
// every transfer, keeps its dead row versions until someone runs VACUUM.
func warnAutovacuumOff(ctx context.Context, log *zap.Logger, store *postgres.Store) {
	var on string
	if err := store.Pool().QueryRow(ctx, "SHOW autovacuum").Scan(&on); err != nil || on == "on" {
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
