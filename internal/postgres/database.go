package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CreateDatabase creates the database named in url when it does not exist,
// connecting to the same server's maintenance database (postgres, else
// template1) with the same credentials. It reports whether it created it.
// Two processes doing this at once is fine: the loser sees the database.
// Errors that waiting cannot cure match ErrNoDatabase or ErrAuth.
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
		return false, fmt.Errorf("create database %q: %w", name, classifyConnect(err))
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

// Autovacuum returns the server's autovacuum setting ("on" or "off").
func (s *Store) Autovacuum(ctx context.Context) (string, error) {
	var on string
	if err := s.pool.QueryRow(ctx, "SHOW autovacuum").Scan(&on); err != nil {
		return "", fmt.Errorf("show autovacuum: %w", err)
	}
	return on, nil
}
