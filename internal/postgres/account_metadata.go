package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/wallet/wallet/internal/transfer"
)

// CreateAccountWithMetadata creates an account with a zero balance and the
// given metadata (nil: none), which the caller has checked with
// transfer.ValidateMetadata. It is idempotent by id like CreateAccount:
// an existing account with the same currency is returned as it is, its
// metadata untouched (PatchAccountMetadata changes it).
func (s *Store) CreateAccountWithMetadata(ctx context.Context, id uuid.UUID, currency string, metadata map[string]string) (transfer.Account, bool, error) {
	currency = transfer.NormalizeCurrency(currency)
	doc, err := metadataJSON(metadata)
	if err != nil {
		return transfer.Account{}, false, fmt.Errorf("create account: %w", err)
	}
	row := s.pool.QueryRow(ctx, `INSERT INTO accounts (id, currency, metadata) VALUES ($1, $2, $3::jsonb)
		ON CONFLICT (id) DO NOTHING
		RETURNING `+accountColumns, id, currency, doc)
	a, err := scanAccount(row)
	switch {
	case err == nil:
		return a, true, nil
	case isCode(err, codeForeignKeyViolation):
		return transfer.Account{}, false, transfer.ErrCurrencyNotSupported
	case !errors.Is(err, pgx.ErrNoRows):
		return transfer.Account{}, false, fmt.Errorf("create account: %w", err)
	}
	existing, err := s.GetAccount(ctx, id)
	if err != nil {
		return transfer.Account{}, false, fmt.Errorf("create account: %w", err)
	}
	if existing.Currency != currency {
		return existing, false, transfer.ErrAccountConflict
	}
	return existing, false, nil
}

// metadataJSON is metadata as the jsonb the columns hold: an object, {}
// for none.
func metadataJSON(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// SearchAccounts pages through the accounts whose metadata holds every pair
// of metadata (nil or empty: all accounts), oldest first. cursor is "" for
// the first page or the previous page's next cursor; next is "" after the
// last page.
func (s *Store) SearchAccounts(ctx context.Context, metadata map[string]string, cursor string, limit int) ([]transfer.Account, string, error) {
	query, args, err := searchAccountsQuery(metadata, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list accounts: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list accounts: %w", err)
	}
	if len(list) <= limit {
		return list, "", nil
	}
	list = list[:limit]
	last := list[limit-1]
	return list, encodeAccountCursor(last.CreatedAt, last.ID), nil
}

// PatchAccountMetadata applies a JSON merge patch (RFC 7396) to an
// account's metadata: a key with a value sets it, a key with nil removes
// it. The result must satisfy transfer.ValidateMetadata; if it does not,
// the error is that *transfer.Error and nothing changes. An unknown account
// is transfer.ErrNotFound.
//
// The account's row is locked for the read and the write, so concurrent
// patches apply one after the other. updated_at is left alone: it is the
// time of the last balance change, which ListAccountsRecent relies on.
func (s *Store) PatchAccountMetadata(ctx context.Context, id uuid.UUID, patch map[string]*string) (transfer.Account, error) {
	var out transfer.Account
	err := retry(ctx, func() error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		var current map[string]string
		err = tx.QueryRow(ctx, `SELECT metadata FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return transfer.ErrNotFound
		}
		if err != nil {
			return err
		}
		merged := make(map[string]string, len(current)+len(patch))
		for k, v := range current {
			merged[k] = v
		}
		for k, v := range patch {
			// A key that could never be set cannot be removed either.
			if err := transfer.ValidateMetadataKey(k); err != nil {
				return err
			}
			if v == nil {
				delete(merged, k)
			} else {
				merged[k] = *v
			}
		}
		if err := transfer.ValidateMetadata(merged); err != nil {
			return err
		}
		doc, err := metadataJSON(merged)
		if err != nil {
			return err
		}
		if out, err = scanAccount(tx.QueryRow(ctx, `UPDATE accounts SET metadata = $2::jsonb WHERE id = $1
			RETURNING `+accountColumns, id, doc)); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		var domain *transfer.Error
		if errors.Is(err, transfer.ErrNotFound) || errors.As(err, &domain) {
			return transfer.Account{}, err
		}
		return transfer.Account{}, fmt.Errorf("patch account metadata: %w", err)
	}
	return out, nil
}

// searchAccountsQuery builds SearchAccounts' statement, asking for limit+1
// rows so that a full page tells whether another follows.
func searchAccountsQuery(metadata map[string]string, cursor string, limit int) (string, []any, error) {
	query, args := selectAccount+` WHERE true`, []any{}
	if len(metadata) > 0 {
		doc, err := metadataJSON(metadata)
		if err != nil {
			return "", nil, fmt.Errorf("list accounts: %w", err)
		}
		// metadata <> '{}' names the predicate of accounts_metadata_idx.
		args = append(args, doc)
		query += ` AND metadata <> '{}' AND metadata @> $1::jsonb`
	}
	if cursor != "" {
		at, id, err := decodeAccountCursor(cursor)
		if err != nil {
			return "", nil, err
		}
		args = append(args, at, id)
		query += fmt.Sprintf(` AND (created_at, id) > ($%d, $%d)`, len(args)-1, len(args))
	}
	args = append(args, limit+1)
	query += fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args))
	return query, args, nil
}
