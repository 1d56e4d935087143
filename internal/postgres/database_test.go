package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
)

func TestCreateDatabase(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	name := "wallet_create_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	u.Path = "/" + name
	ctx := context.Background()
	t.Cleanup(func() {
		admin := *u
		admin.Path = "/postgres"
		conn, err := pgx.Connect(ctx, admin.String())
		if err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
			_ = conn.Close(ctx)
		}
	})

	created, err := postgres.CreateDatabase(ctx, u.String())
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	created, err = postgres.CreateDatabase(ctx, u.String())
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect to the created database: %v", err)
	}
	_ = conn.Close(ctx)
}

// TestOpenNamesHopelessErrors: a database that does not exist and refused
// credentials are told apart from outages, so that start-up stops at once.
func TestOpenNamesHopelessErrors(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	missing := *u
	missing.Path = "/wallet_missing_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := postgres.Open(ctx, missing.String()); !errors.Is(err, postgres.ErrNoDatabase) || errors.Is(err, postgres.ErrAuth) {
		t.Fatalf("missing database: %v", err)
	}
	stranger := *u
	stranger.User = url.UserPassword("wallet_nobody_"+strings.ReplaceAll(uuid.NewString()[:8], "-", ""), "x")
	if _, err := postgres.Open(ctx, stranger.String()); !errors.Is(err, postgres.ErrAuth) {
		t.Fatalf("unknown role: %v", err)
	}
}
