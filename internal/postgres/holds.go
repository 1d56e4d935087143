package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

const selectHold = `SELECT id, from_account, to_account, amount::text, posted_amount::text, currency, state,
	expires_at, created_at, updated_at FROM holds`

// selectHoldView is selectHold for reads, with the hold request's metadata
// and reference (a hold's id is its request's). The batch locks holds with
// selectHold alone, so it never locks a transfer row for a label.
const selectHoldView = `SELECT id, from_account, to_account, amount::text, posted_amount::text, currency, state,
	expires_at, created_at, updated_at, l.metadata, l.reference FROM holds
	LEFT JOIN LATERAL (SELECT t.metadata::text AS metadata, coalesce(t.reference, '') AS reference
		FROM transfers t WHERE t.id = holds.id) l ON true`

func scanHoldView(row pgx.Row) (transfer.Hold, error) {
	var metadata, reference *string
	h, err := scanHold(row, &metadata, &reference)
	if err != nil {
		return h, err
	}
	if reference != nil {
		h.Reference = *reference
	}
	if metadata != nil {
		if err := json.Unmarshal([]byte(*metadata), &h.Metadata); err != nil {
			return h, fmt.Errorf("hold %s metadata: %w", h.ID, err)
		}
	}
	return h, nil
}

// scanHold reads a row of selectHold, and into extra what follows it.
func scanHold(row pgx.Row, extra ...any) (transfer.Hold, error) {
	var h transfer.Hold
	var id, from, to [16]byte
	var amount, posted, state string
	var expires pgtype.Timestamptz
	dest := append([]any{&id, &from, &to, &amount, &posted, &h.Currency, &state, &expires, &h.CreatedAt, &h.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return h, err
	}
	h.ID, h.From, h.To, h.State = id, from, to, transfer.HoldState(state)
	if expires.Valid {
		h.ExpiresAt = expires.Time.UTC()
	}
	h.CreatedAt, h.UpdatedAt = h.CreatedAt.UTC(), h.UpdatedAt.UTC()
	var err error
	if h.Amount, err = decimal.NewFromString(amount); err != nil {
		return h, fmt.Errorf("hold %s amount %q: %w", h.ID, amount, err)
	}
	if h.PostedAmount, err = decimal.NewFromString(posted); err != nil {
		return h, fmt.Errorf("hold %s posted_amount %q: %w", h.ID, posted, err)
	}
	return h, nil
}

// GetHold reads the hold of the hold request id. A rejected hold request
// has no hold: it comes back in state rejected with the request's reason,
// accounts, amount and currency. An id not decided, or decided as another
// kind, is transfer.ErrNotFound.
func (s *Store) GetHold(ctx context.Context, id uuid.UUID) (transfer.Hold, error) {
	h, err := scanHoldView(s.pool.QueryRow(ctx, selectHoldView+` WHERE id = $1`, id))
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("get hold: %w", err)
	}
	t, err := s.GetTransfer(ctx, id)
	if err != nil {
		return transfer.Hold{}, err
	}
	if t.Kind != transfer.KindHold || t.Status != transfer.StatusRejected {
		// An applied hold request always has its hold.
		return transfer.Hold{}, transfer.ErrNotFound
	}
	return transfer.Hold{ID: t.ID, From: t.From, To: t.To, Amount: t.Amount, Currency: t.Currency,
		State: transfer.HoldStateRejected, Reason: t.Reason, CreatedAt: t.ProcessedAt, UpdatedAt: t.ProcessedAt,
		Metadata: t.Metadata, Reference: t.Reference}, nil
}

// ListHolds pages through the holds reserving on account, oldest first,
// all of them or only those in state (held, posted, voided or expired;
// another state is transfer.ErrBadFilter). cursor is "" for the first page or the
// previous page's next cursor; next is "" after the last page.
func (s *Store) ListHolds(ctx context.Context, account uuid.UUID, state transfer.HoldState, cursor string, limit int) ([]transfer.Hold, string, error) {
	query, args := selectHoldView+` WHERE from_account = $1`, []any{account}
	switch state {
	case "":
	case transfer.HoldStateHeld, transfer.HoldStatePosted, transfer.HoldStateVoided, transfer.HoldStateExpired:
		// Written into the statement, not bound, so that state = 'held'
		// is seen to match the partial index of live holds.
		query += ` AND state = '` + string(state) + `'`
	default:
		return nil, "", transfer.ErrBadFilter
	}
	if cursor != "" {
		at, id, err := decodeAccountCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		query += ` AND (created_at, id) > ($2, $3)`
		args = append(args, at, id)
	}
	query += fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args)+1)
	args = append(args, limit+1)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list holds: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Hold, error) { return scanHoldView(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list holds: %w", err)
	}
	if len(list) <= limit {
		return list, "", nil
	}
	list = list[:limit]
	last := list[limit-1]
	return list, encodeAccountCursor(last.CreatedAt, last.ID), nil
}

// ListReversals pages through the reversal requests naming transferID,
// applied and rejected, in the order they were decided. cursor is "" for
// the first page or the previous page's next cursor.
func (s *Store) ListReversals(ctx context.Context, transferID uuid.UUID, cursor string, limit int) ([]transfer.Transfer, string, error) {
	query, args := selectTransfer+` WHERE reverses = $1`, []any{transferID}
	if cursor != "" {
		at, id, err := decodeAccountCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		query += ` AND (processed_at, id) > ($2, $3)`
		args = append(args, at, id)
	}
	query += fmt.Sprintf(` ORDER BY processed_at, id LIMIT $%d`, len(args)+1)
	args = append(args, limit+1)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list reversals: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Transfer, error) { return scanTransfer(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list reversals: %w", err)
	}
	if len(list) <= limit {
		return list, "", nil
	}
	list = list[:limit]
	last := list[limit-1]
	return list, encodeAccountCursor(last.ProcessedAt, last.ID), nil
}

// ExpireHolds expires up to limit holds that are due at now (still held,
// expires_at <= now), soonest first, and returns how many it expired. It
// runs in one transaction with ApplyBatch's locking: the holds' senders are
// locked in id order, then the holds; a hold a post settled meanwhile is
// left as the post left it. Calling it again after an error, or from
// several processes at once, is safe. now should come from the same clock
// as the batches' decision time (the workers' wall clock): a hold is
// expired by the sweep exactly when a post would be refused as expired.
func (s *Store) ExpireHolds(ctx context.Context, now time.Time, limit int) (int, error) {
	now = now.UTC().Truncate(time.Microsecond)
	var expired int
	err := retry(ctx, func() error {
		var err error
		expired, err = s.expireOnce(ctx, now, limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire holds: %w", err)
	}
	return expired, nil
}

func (s *Store) expireOnce(ctx context.Context, now time.Time, limit int) (int, error) {
	// Candidates first, without locks: the index of live holds with a
	// timeout answers it, and a sweep with nothing due ends here.
	rows, err := s.pool.Query(ctx, `SELECT id, from_account FROM holds
		WHERE state = 'held' AND expires_at IS NOT NULL AND expires_at <= $1
		ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return 0, err
	}
	var holdIDs, accountIDs []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for rows.Next() {
		var id, from [16]byte
		if err := rows.Scan(&id, &from); err != nil {
			rows.Close()
			return 0, err
		}
		holdIDs = append(holdIDs, id)
		if !seen[from] {
			seen[from] = true
			accountIDs = append(accountIDs, from)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(holdIDs) == 0 {
		return 0, nil
	}
	sort.Slice(accountIDs, func(i, j int) bool { return string(accountIDs[i][:]) < string(accountIDs[j][:]) })

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	book := &transfer.Book{
		Accounts: make(map[uuid.UUID]*transfer.Account, len(accountIDs)),
		Holds:    make(map[uuid.UUID]*transfer.Hold, len(holdIDs)),
	}
	batch := &pgx.Batch{}
	queueLockAccounts(batch, accountIDs, book)
	queueLockHolds(batch, holdIDs, book)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return 0, err
	}
	ch := book.Expire(now)
	batch = &pgx.Batch{}
	queueUpdateAccounts(batch, ch.Accounts, now)
	queueSaveHolds(batch, ch.Holds)
	if batch.Len() > 0 {
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return len(ch.Holds), nil
}
