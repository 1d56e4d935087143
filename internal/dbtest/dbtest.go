// Package dbtest gives each test its own freshly migrated PostgreSQL
// database, cloned from a template database that is migrated once.
//
// The server comes from WALLET_TEST_DATABASE_URL when it is set (any
// database on the server; it is used to create the others), else from a
// testcontainers Postgres when Docker is available. With neither, tests
// fail under CI=true and are skipped, loudly, elsewhere.
package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/migrations"
)

// EnvURL names the variable holding the admin URL of the test server.
const EnvURL = "WALLET_TEST_DATABASE_URL"

var (
	setupOnce sync.Once
	adminURL  string
	template  string
	setupErr  error
)

// URL creates a new migrated database for t, drops it when t ends, and
// returns its connection URL.
func URL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "TEMPLATE "+templateName(t))
}

// EmptyURL creates a new database for t without any migration applied,
// drops it when t ends, and returns its connection URL.
func EmptyURL(t testing.TB) string {
	t.Helper()
	templateName(t)
	return newDatabase(t, "TEMPLATE template0")
}

// templateName finds the server and the migrated template, once per test
// binary, and skips or fails t when there is no server.
func templateName(t testing.TB) string {
	t.Helper()
	setupOnce.Do(func() { adminURL, template, setupErr = setup() })
	if setupErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dbtest: no PostgreSQL for tests under CI: %v", setupErr)
		}
		t.Skipf("dbtest: SKIPPING, no PostgreSQL for tests (set %s or start Docker): %v", EnvURL, setupErr)
	}
	return template
}

// newDatabase creates a database with the given CREATE DATABASE options,
// dropped when t ends, and returns its URL.
func newDatabase(t testing.TB, options string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "wallet_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if err := exec(ctx, adminURL, fmt.Sprintf("CREATE DATABASE %s %s", name, options)); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(adminURL, name)
}

// NewStore opens a store with opts on a new migrated database for t.
func NewStore(t testing.TB, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	u := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, u, opts...)
	if err != nil {
		t.Fatalf("dbtest: open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// setup finds the server and makes sure the template for the current
// migrations exists. The template's name carries a hash of the migration
// files, so a changed schema gets a new template, and an advisory lock
// keeps test binaries running in parallel from building it twice.
func setup() (string, string, error) {
	admin := os.Getenv(EnvURL)
	if admin == "" {
		var err error
		if admin, err = startContainer(); err != nil {
			return "", "", err
		}
	}
	hash, err := migrationsHash()
	if err != nil {
		return "", "", err
	}
	name := "wallet_template_" + hash[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", "", fmt.Errorf("connect %s: %w", redact(admin), err)
	}
	defer func() { _ = conn.Close(ctx) }() // closing also releases the advisory lock
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7260315)"); err != nil {
		return "", "", err
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock(7260315)") //nolint:errcheck // released on close too
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", "", err
	}
	if exists {
		return admin, name, nil
	}
	// Build under a temporary name and rename at the end, so a crash
	// half-way never leaves a half-migrated template behind.
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", "", err
	}
	if err := postgres.Migrate(ctx, withDatabase(admin, building)); err != nil {
		return "", "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", "", err
	}
	return admin, name, nil
}

func startContainer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		return "", fmt.Errorf("%s is not set and Docker is not available: %w", EnvURL, err)
	}
	c, err := tcpostgres.Run(ctx, "postgres:15-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("5432/tcp")),
	)
	if err != nil {
		return "", fmt.Errorf("%s is not set and a Postgres container did not start: %w", EnvURL, err)
	}
	// The container lives as long as the test binary; Ryuk removes it after.
	return c.ConnectionString(ctx, "sslmode=disable")
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func exec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }() // the statement's error is the one that matters
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
