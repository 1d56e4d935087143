package postgres

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/wallet/wallet/migrations"
)

// versionTable is goose's bookkeeping table, created by the first Migrate.
const versionTable = "goose_db_version"

// RequiredSchemaVersion is the newest migration embedded in this build: the
// schema version its queries were written for.
func RequiredSchemaVersion() (int64, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	var newest int64
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return 0, fmt.Errorf("schema version: migration %s: %w", name, err)
		}
		newest = max(newest, v)
	}
	if newest == 0 {
		return 0, fmt.Errorf("schema version: no migrations are embedded")
	}
	return newest, nil
}

// SchemaVersion returns the newest migration applied to the database, or 0
// when none has been (goose's table does not exist yet).
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM "+versionTable+" WHERE is_applied").Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
