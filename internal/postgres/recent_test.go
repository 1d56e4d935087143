package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// queryLog records the statements a pool runs, with their arguments.
type queryLog struct {
	mu      sync.Mutex
	queries []pgx.TraceQueryStartData
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, d)
	return ctx
}

func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *queryLog) take() []pgx.TraceQueryStartData {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queries
	l.queries = nil
	return q
}

// recentStore opens a store on a fresh database whose statements are logged.
func recentStore(t *testing.T) (*postgres.Store, *queryLog) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	log := &queryLog{}
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return postgres.New(pool), log
}

// wantRecent is the definition: the accounts by updated_at, newest first.
func wantRecent(t *testing.T, s *postgres.Store, limit int) []uuid.UUID {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT id FROM accounts ORDER BY updated_at DESC, id LIMIT $1`, limit)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func checkRecent(t *testing.T, s *postgres.Store, limit int) {
	t.Helper()
	got, err := s.ListAccountsRecent(context.Background(), limit)
	if err != nil {
		t.Fatal(err)
	}
	want := wantRecent(t, s, limit)
	if len(got) != len(want) {
		t.Fatalf("%d accounts, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i] {
			t.Fatalf("account %d is %s, want %s", i, got[i].ID, want[i])
		}
	}
}

// TestListAccountsRecentDoesNotSortAllAccounts: the original API's account
// list (the 100 most recently updated) must not read and sort the whole
// accounts table on every call. With many accounts, none of the statements
// it runs may scan accounts or entries sequentially; and it must still
// list exactly what ordering every account by updated_at lists, also when
// the newest entries all belong to a few accounts.
func TestListAccountsRecentDoesNotSortAllAccounts(t *testing.T) {
	t.Parallel()
	s, log := recentStore(t)
	ctx := context.Background()
	// 200k accounts, half of them with an entry, as batches leave them:
	// updated_at is the time of the account's newest entry.
	for _, q := range []string{
		`INSERT INTO accounts (id, currency, created_at, updated_at)
			SELECT gen_random_uuid(), 'USD', t, t
			FROM generate_series(1, 200000) AS i, LATERAL (SELECT timestamptz '2020-01-01' + i * interval '1 minute' AS t) AS c`,
		`INSERT INTO entries (account_id, version, transfer_id, kind, direction, amount, balance_after, currency, created_at)
			SELECT id, 1, gen_random_uuid(), 'deposit', 'credit', 1, 1, 'USD', created_at + random() * interval '300 days'
			FROM accounts WHERE get_byte(uuid_send(id), 0) % 2 = 0`,
		`UPDATE accounts a SET balance = 1, version = 1, updated_at = e.created_at FROM entries e WHERE e.account_id = a.id`,
		`ANALYZE accounts, entries`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	checkRecent(t, s, 100)

	// Recent activity through the store, then a burst on one account, so
	// that the newest entries name fewer than 100 accounts.
	var fresh []uuid.UUID
	for range 30 {
		fresh = append(fresh, newAccount(t, s, "USD"))
	}
	var reqs []transfer.Request
	for _, id := range fresh[:20] {
		reqs = append(reqs, deposit(id, "5", "USD"))
	}
	apply(t, s, reqs...)
	checkRecent(t, s, 100)
	for range 3 {
		reqs = reqs[:0]
		for range 500 {
			reqs = append(reqs, deposit(fresh[0], "1", "USD"))
		}
		apply(t, s, reqs...)
	}
	checkRecent(t, s, 100)
	checkRecent(t, s, 7)

	log.take()
	if _, err := s.ListAccountsRecent(ctx, 100); err != nil {
		t.Fatal(err)
	}
	queries := log.take()
	if len(queries) == 0 {
		t.Fatal("no statement logged")
	}
	for _, q := range queries {
		var plan strings.Builder
		rows, err := s.Pool().Query(ctx, "EXPLAIN "+q.SQL, q.Args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			plan.WriteString(l + "\n")
		}
		for _, table := range []string{"accounts", "entries"} {
			if strings.Contains(plan.String(), "Seq Scan on "+table) {
				t.Errorf("%s scans %s sequentially:\n%s", q.SQL, table, plan.String())
			}
		}
	}
}
