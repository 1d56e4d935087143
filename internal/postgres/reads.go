package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

const accountColumns = `id, currency, balance::text, held::text, version, created_at, updated_at, metadata`

const selectAccount = `SELECT ` + accountColumns + ` FROM accounts`

func scanAccount(row pgx.Row) (transfer.Account, error) {
	var a transfer.Account
	var balance, held string
	if err := row.Scan(&a.ID, &a.Currency, &balance, &held, &a.Version, &a.CreatedAt, &a.UpdatedAt, &a.Metadata); err != nil {
		return transfer.Account{}, err
	}
	var err error
	if a.Balance, err = decimal.NewFromString(balance); err != nil {
		return transfer.Account{}, err
	}
	if a.Held, err = decimal.NewFromString(held); err != nil {
		return transfer.Account{}, err
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, nil
}

// CreateAccount creates an account with a zero balance. It is idempotent by
// id: when the account exists with the same currency it is returned with
// created false; with another currency the error is transfer.ErrAccountConflict.
func (s *Store) CreateAccount(ctx context.Context, id uuid.UUID, currency string) (transfer.Account, bool, error) {
	return s.CreateAccountWithMetadata(ctx, id, currency, nil)
}

// GetAccount reads one account.
func (s *Store) GetAccount(ctx context.Context, id uuid.UUID) (transfer.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, selectAccount+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return transfer.Account{}, transfer.ErrNotFound
	}
	if err != nil {
		return transfer.Account{}, fmt.Errorf("get account: %w", err)
	}
	return a, nil
}

// ListAccounts pages through all accounts oldest first. cursor is "" for the
// first page or the next cursor of the previous page; the returned next
// cursor is "" after the last page.
func (s *Store) ListAccounts(ctx context.Context, cursor string, limit int) ([]transfer.Account, string, error) {
	return s.SearchAccounts(ctx, nil, cursor, limit)
}

// ListAccountsRecent lists up to limit accounts, most recently updated first,
// as the original service's account list did, without sorting the whole
// accounts table. A batch writes an account's balance and its entries in one
// statement each with one timestamp, so an account's updated_at is the
// created_at of its newest entry, or its own created_at when it has none.
// The newest k entries (entries_created_idx) and the newest accounts
// (accounts_created_idx) are then candidates enough once more than limit
// accounts have an entry strictly newer than the oldest of those k: every
// account ranked above them has such an entry, or was created after it with
// no entry at all. Otherwise k grows; in the end every account is sorted.
func (s *Store) ListAccountsRecent(ctx context.Context, limit int) ([]transfer.Account, error) {
	for k := 4 * limit; k <= recentEntriesMax; k *= 8 {
		list, exact, err := s.recentAccounts(ctx, limit, k)
		if err != nil {
			return nil, fmt.Errorf("list recent accounts: %w", err)
		}
		if exact {
			return list, nil
		}
	}
	rows, err := s.pool.Query(ctx, selectAccount+` ORDER BY updated_at DESC, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list recent accounts: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, fmt.Errorf("list recent accounts: %w", err)
	}
	return list, nil
}

// recentEntriesMax bounds the entries ListAccountsRecent reads before it
// sorts the accounts instead: that many newest entries naming fewer than
// limit accounts means a handful of accounts take all the traffic.
const recentEntriesMax = 1 << 20

// recentAccounts lists the limit most recently updated among the accounts
// of the newest k entries and the limit newest accounts, and reports
// whether that is exactly the limit most recently updated of all.
func (s *Store) recentAccounts(ctx context.Context, limit, k int) ([]transfer.Account, bool, error) {
	rows, err := s.pool.Query(ctx, `
		WITH recent AS (
			SELECT account_id, created_at FROM entries ORDER BY created_at DESC LIMIT $2
		), edge AS (
			SELECT count(*) AS n, min(created_at) AS oldest FROM recent
		), candidates AS (
			SELECT account_id AS id FROM recent
			UNION
			SELECT id FROM (SELECT id FROM accounts ORDER BY created_at DESC, id DESC LIMIT $1) AS newest
		)
		SELECT a.id, a.currency, a.balance::text, a.version, a.created_at, a.updated_at,
			(SELECT n FROM edge) < $2 OR (SELECT count(DISTINCT r.account_id) FROM recent r, edge
				WHERE r.created_at > edge.oldest) >= $1
		FROM candidates c
		-- One primary-key lookup per candidate: OFFSET 0 keeps the planner
		-- from turning this into a join that reads the whole table.
		CROSS JOIN LATERAL (SELECT * FROM accounts WHERE accounts.id = c.id OFFSET 0) AS a
		ORDER BY a.updated_at DESC, a.id LIMIT $1`, limit, k)
	if err != nil {
		return nil, false, err
	}
	exact := true
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Account, error) {
		var a transfer.Account
		var balance string
		if err := r.Scan(&a.ID, &a.Currency, &balance, &a.Version, &a.CreatedAt, &a.UpdatedAt, &exact); err != nil {
			return a, err
		}
		if a.Balance, err = decimal.NewFromString(balance); err != nil {
			return transfer.Account{}, err
		}
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		return a, nil
	})
	return list, exact, err
}

// The account cursor is opaque to clients: base64 of "<unix nanos>.<id>".
func encodeAccountCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixNano(), 10) + "." + id.String()))
}

func decodeAccountCursor(c string) (time.Time, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.Nil, transfer.ErrBadCursor
	}
	nanos, idText, ok := strings.Cut(string(raw), ".")
	if !ok {
		return time.Time{}, uuid.Nil, transfer.ErrBadCursor
	}
	n, err := strconv.ParseInt(nanos, 10, 64)
	if err != nil {
		return time.Time{}, uuid.Nil, transfer.ErrBadCursor
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return time.Time{}, uuid.Nil, transfer.ErrBadCursor
	}
	return time.Unix(0, n).UTC(), id, nil
}

// ListEntries pages through an account's statement, newest first. cursor is
// "" for the first page or the previous page's next cursor (an entry
// version); next is "" after the last page.
func (s *Store) ListEntries(ctx context.Context, accountID uuid.UUID, cursor string, limit int) ([]transfer.Entry, string, error) {
	return s.SearchEntries(ctx, accountID, transfer.EntryFilter{}, cursor, limit)
}

const selectTransfer = `SELECT id, kind, status, coalesce(reason, ''), from_account, to_account,
	amount::text, currency, fingerprint, submitted_at, processed_at, attempt, decisions, superseded,
	hold_id, reverses, reversed_amount::text, metadata::text AS metadata, coalesce(reference, '') AS reference FROM transfers`

func scanTransfer(row pgx.Row) (transfer.Transfer, error) {
	var t transfer.Transfer
	var kind, status, reason, amount, reversed string
	var id [16]byte
	var from, to, attempt, holdID, reverses pgtype.UUID
	var superseded [][16]byte
	var fp []byte
	var metadata *string
	if err := row.Scan(&id, &kind, &status, &reason, &from, &to, &amount, &t.Currency, &fp,
		&t.AcceptedAt, &t.ProcessedAt, &attempt, &t.Decisions, &superseded, &holdID, &reverses, &reversed,
		&metadata, &t.Reference); err != nil {
		return t, err
	}
	if metadata != nil {
		if err := json.Unmarshal([]byte(*metadata), &t.Metadata); err != nil {
			return t, fmt.Errorf("transfer %s metadata: %w", id, err)
		}
	}
	t.ID, t.From, t.To, t.Attempt = id, from.Bytes, to.Bytes, attempt.Bytes
	t.HoldID, t.Reverses = holdID.Bytes, reverses.Bytes
	for _, a := range superseded {
		t.Superseded = append(t.Superseded, a)
	}
	t.Kind, t.Status, t.Reason = transfer.Kind(kind), transfer.Status(status), transfer.Code(reason)
	if len(fp) != len(t.Fingerprint) {
		return t, fmt.Errorf("transfer %s: fingerprint has %d bytes", t.ID, len(fp))
	}
	copy(t.Fingerprint[:], fp)
	t.AcceptedAt, t.ProcessedAt = t.AcceptedAt.UTC(), t.ProcessedAt.UTC()
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return t, fmt.Errorf("transfer %s amount %q: %w", t.ID, amount, err)
	}
	t.Amount = d
	if t.ReversedAmount, err = decimal.NewFromString(reversed); err != nil {
		return t, fmt.Errorf("transfer %s reversed_amount %q: %w", t.ID, reversed, err)
	}
	return t, nil
}

// GetTransfer reads a decided request by id.
func (s *Store) GetTransfer(ctx context.Context, id uuid.UUID) (transfer.Transfer, error) {
	t, err := scanTransfer(s.pool.QueryRow(ctx, selectTransfer+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, transfer.ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("get transfer: %w", err)
	}
	return t, nil
}
