package postgres_test

import (
	"context"
	"testing"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
)

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	need, err := postgres.RequiredSchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	if need < 1 {
		t.Fatalf("required version %d; the build embeds migrations", need)
	}

	url := dbtest.EmptyURL(t)
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("empty database: version %d, %v; want 0", v, err)
	}
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != need {
		t.Fatalf("migrated database: version %d, %v; want %d", v, err, need)
	}
	// A second run applies nothing and changes nothing.
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != need {
		t.Fatalf("after a second migrate: version %d, %v; want %d", v, err, need)
	}
}
