package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/wallet/wallet/migrations"
)

// Migrate brings the database at url up to the newest migration. It is safe
// to run twice and from several processes at once: goose holds a Postgres
// advisory lock while it works. When it applied something it refreshes
// planner statistics, because on a freshly created database the planner
// otherwise guesses at empty tables and may pick sequential scans for hot
// lookups.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrate: parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer func() { _ = db.Close() }() // nothing is left to flush once Up has returned

	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Nothing new (every pod start of a Deployment with the migration as
	// an init container lands here): the statistics are autovacuum's job.
	if len(applied) == 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, "ANALYZE currencies, accounts, transfers, entries, holds"); err != nil {
		return fmt.Errorf("migrate: analyze: %w", err)
	}
	return nil
}
