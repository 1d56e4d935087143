package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// Store is the wallet's PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	tracer trace.Tracer // nil: tracing is off

	currencies currencyCache
}

// New wraps an open pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
// pgx's own default (the number of CPUs, at least 4) is too small for a
// process whose batch transactions hold connections for tens of
// milliseconds while the gateway's lookups need one per request.
const DefaultMaxConns = 16

// Open connects a pool to url and checks that the database answers. A
// pool_max_conns parameter in url overrides DefaultMaxConns. Errors that
// waiting cannot cure match ErrNoDatabase or ErrAuth.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if o.tp != nil {
		cfg.ConnConfig.Tracer = queryTracer(o.tp)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// A process frozen inside a batch transaction (SIGSTOP, a hung VM)
	// would hold its row locks, and stall every batch touching those
	// accounts, for as long as it is frozen. The server ends such a
	// session instead; its batch was not committed and is retried.
	if _, set := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "15s"
	}
	// Plan every statement for the table as it is now. A generic plan
	// made while a table was nearly empty (a new database, or autovacuum
	// off) scans it sequentially, and each pooled connection keeps that
	// plan for its life: as the table grew, every batch's lookup of
	// decided ids read the whole of transfers.
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", classifyConnect(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", classifyConnect(err))
	}
	s := New(pool)
	if o.tp != nil {
		s.tracer = o.tp.Tracer(tracerName)
	}
	return s, nil
}

// Pool exposes the pool for health checks and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }
