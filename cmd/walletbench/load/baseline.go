package load

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// syncStore applies requests the way the original service did: each one
// in its own transaction that locks the accounts it touches (in id order,
// so concurrent transactions queue instead of deadlocking), checks the
// rules, inserts the transfer and its entries, updates the balances and
// commits. It writes the same tables and rows as the batched store and
// decides with the same domain function, so the two differ only in how
// many requests share a transaction.
//
// Each transaction takes four round trips: BEGIN, the locking SELECT, the
// writes sent as one pipelined batch, and COMMIT.
type syncStore struct {
	pool       *pgxpool.Pool
	precisions map[string]int32
	retries    atomic.Int64 // transactions rerun after a deadlock or serialization failure
}

// syncMaxAttempts bounds the reruns of a transaction that failed for a
// reason another attempt can cure.
const syncMaxAttempts = 5

func newSyncStore(ctx context.Context, pool *pgxpool.Pool) (*syncStore, error) {
	precisions, err := readPrecisions(ctx, pool)
	if err != nil {
		return nil, err
	}
	return &syncStore{pool: pool, precisions: precisions}, nil
}

func readPrecisions(ctx context.Context, pool *pgxpool.Pool) (map[string]int32, error) {
	rows, err := pool.Query(ctx, `SELECT code, precision FROM currencies`)
	if err != nil {
		return nil, fmt.Errorf("read currencies: %w", err)
	}
	defer rows.Close()
	out := map[string]int32{}
	for rows.Next() {
		var code string
		var p int16
		if err := rows.Scan(&code, &p); err != nil {
			return nil, fmt.Errorf("read currencies: %w", err)
		}
		out[code] = int32(p)
	}
	return out, rows.Err()
}

// createAccountsDB inserts accounts with zero balances, all in one statement:
// account creation is set-up, not what is measured.
func createAccountsDB(ctx context.Context, pool *pgxpool.Pool, ids []uuid.UUID, currencies []string) error {
	for start := 0; start < len(ids); start += checkChunk {
		end := min(start+checkChunk, len(ids))
		if _, err := pool.Exec(ctx, `INSERT INTO accounts (id, currency)
			SELECT * FROM unnest($1::uuid[], $2::text[])`, binaryUUIDs(ids[start:end]), currencies[start:end]); err != nil {
			return fmt.Errorf("create accounts: %w", err)
		}
	}
	return nil
}

// apply applies one request in one transaction and returns its outcome.
func (s *syncStore) apply(ctx context.Context, r transfer.Request) (transfer.Outcome, error) {
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := s.applyOnce(ctx, r)
		if err == nil {
			return out, nil
		}
		if !syncRetryable(err) || attempt == syncMaxAttempts || ctx.Err() != nil {
			return transfer.Outcome{}, fmt.Errorf("sync apply %s: %w", r.ID, err)
		}
		s.retries.Add(1)
		select {
		case <-ctx.Done():
			return transfer.Outcome{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (s *syncStore) applyOnce(ctx context.Context, r transfer.Request) (transfer.Outcome, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	r.AcceptedAt = now
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return transfer.Outcome{}, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	ids := make([][16]byte, 0, 2)
	for _, id := range []uuid.UUID{r.From, r.To} {
		if id != uuid.Nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	book := &transfer.Book{
		Precisions: s.precisions,
		Accounts:   make(map[uuid.UUID]*transfer.Account, 2),
		Decided:    map[uuid.UUID]transfer.Transfer{},
	}
	rows, err := tx.Query(ctx, `SELECT id, currency, balance::text, version FROM accounts
		WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
	if err != nil {
		return transfer.Outcome{}, err
	}
	for rows.Next() {
		var a transfer.Account
		var id [16]byte
		var balance string
		if err := rows.Scan(&id, &a.Currency, &balance, &a.Version); err != nil {
			rows.Close()
			return transfer.Outcome{}, err
		}
		a.ID = id
		if a.Balance, err = decimal.NewFromString(balance); err != nil {
			rows.Close()
			return transfer.Outcome{}, err
		}
		book.Accounts[a.ID] = &a
	}
	if err := rows.Err(); err != nil {
		return transfer.Outcome{}, err
	}

	outcomes, ch := book.Apply([]transfer.Request{r}, now)
	batch := &pgx.Batch{}
	for _, t := range ch.Transfers {
		var reason *string
		if t.Reason != "" {
			rs := string(t.Reason)
			reason = &rs
		}
		fp := t.Fingerprint
		batch.Queue(`INSERT INTO transfers
			(id, kind, status, reason, from_account, to_account, amount, currency, fingerprint, submitted_at, processed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			[16]byte(t.ID), string(t.Kind), string(t.Status), reason, nullable(t.From), nullable(t.To),
			t.Amount.String(), t.Currency, fp[:], t.AcceptedAt, t.ProcessedAt)
	}
	for _, e := range ch.Entries {
		batch.Queue(`INSERT INTO entries
			(account_id, version, transfer_id, kind, direction, amount, balance_after, counterparty, currency, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			[16]byte(e.AccountID), e.Version, [16]byte(e.TransferID), string(e.Kind), string(e.Direction),
			e.Amount.String(), e.BalanceAfter.String(), nullable(e.Counterparty), e.Currency, e.CreatedAt)
	}
	for _, a := range ch.Accounts {
		batch.Queue(`UPDATE accounts SET balance = $2, version = $3, updated_at = $4 WHERE id = $1`,
			[16]byte(a.ID), a.Balance.String(), a.Version, now)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.TableName == "transfers" {
			// The id was decided before: the original service answered
			// with the stored outcome.
			return s.stored(ctx, r)
		}
		return transfer.Outcome{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return transfer.Outcome{}, err
	}
	return outcomes[0], nil
}

// stored reads the outcome of an id decided before, as a replay.
func (s *syncStore) stored(ctx context.Context, r transfer.Request) (transfer.Outcome, error) {
	var status string
	var reason *string
	var fp []byte
	err := s.pool.QueryRow(ctx, `SELECT status, reason, fingerprint FROM transfers WHERE id = $1`, [16]byte(r.ID)).
		Scan(&status, &reason, &fp)
	if err != nil {
		return transfer.Outcome{}, err
	}
	t := transfer.Transfer{ID: r.ID, Kind: r.Kind, Status: transfer.Status(status)}
	if reason != nil {
		t.Reason = transfer.Code(*reason)
	}
	want := r.Fingerprint()
	return transfer.Outcome{Transfer: t, Replayed: true, Conflict: string(fp) != string(want[:])}, nil
}

func nullable(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return [16]byte(id)
}

// syncRetryable reports errors another attempt can cure: deadlock,
// serialization failure, lock timeout and lost connections.
func syncRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "55P03":
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
