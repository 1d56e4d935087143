package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// searchKinds and searchStatuses are the values a filter may name. They are
// written into the statement rather than bound, so that the planner sees
// the value: status = 'rejected' then matches its partial index.
var (
	searchKinds = map[transfer.Kind]bool{
		transfer.KindTransfer: true, transfer.KindDeposit: true, transfer.KindWithdrawal: true,
		transfer.KindHold: true, transfer.KindPost: true, transfer.KindVoid: true, transfer.KindReversal: true,
	}
	searchStatuses = map[transfer.Status]bool{transfer.StatusApplied: true, transfer.StatusRejected: true}
)

// SearchTransfers pages through the decided requests of every kind that
// match f, newest decision first (processed_at, then id, descending).
// cursor is "" for the first page or the previous page's next cursor; next
// is "" after the last page. A kind or status the store does not know is
// transfer.ErrBadFilter. Requests accepted but not yet decided are not in the
// database and so not in the results.
func (s *Store) SearchTransfers(ctx context.Context, f transfer.Filter, cursor string, limit int) ([]transfer.Transfer, string, error) {
	query, args, err := searchTransfersQuery(f, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("search transfers: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transfer.Transfer, error) { return scanTransfer(r) })
	if err != nil {
		return nil, "", fmt.Errorf("search transfers: %w", err)
	}
	if len(list) <= limit {
		return list, "", nil
	}
	list = list[:limit]
	last := list[limit-1]
	return list, encodeAccountCursor(last.ProcessedAt, last.ID), nil
}

// searchTransfersQuery builds SearchTransfers' statement. It asks for
// limit+1 rows, so that a full page tells whether another follows.
//
// An account filter is two walks, one per side, each over its own index
// (transfers_from_idx, transfers_to_idx) and each stopped after a page,
// merged and cut to a page again: an OR of the sides would make the planner
// gather every row of the account and sort them. The receiver side leaves
// out rows naming the account as sender too, which the first walk found.
func searchTransfersQuery(f transfer.Filter, cursor string, limit int) (string, []any, error) {
	var conds []string
	var args []any
	bind := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Kind != "" {
		if !searchKinds[f.Kind] {
			return "", nil, transfer.ErrBadFilter
		}
		conds = append(conds, "kind = '"+string(f.Kind)+"'")
	}
	if f.Status != "" {
		if !searchStatuses[f.Status] {
			return "", nil, transfer.ErrBadFilter
		}
		conds = append(conds, "status = '"+string(f.Status)+"'")
	}
	if f.Reference != "" {
		conds = append(conds, "reference = "+bind(f.Reference))
	}
	if len(f.Metadata) > 0 {
		doc, err := json.Marshal(f.Metadata)
		if err != nil {
			return "", nil, fmt.Errorf("search transfers: %w", err)
		}
		// IS NOT NULL names the predicate of transfers_metadata_idx.
		conds = append(conds, "metadata IS NOT NULL", "metadata @> "+bind(string(doc))+"::jsonb")
	}
	if !f.After.IsZero() {
		conds = append(conds, "processed_at > "+bind(micros(f.After)))
	}
	if !f.Before.IsZero() {
		conds = append(conds, "processed_at <= "+bind(micros(f.Before)))
	}
	if cursor != "" {
		at, id, err := decodeAccountCursor(cursor)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, "(processed_at, id) < ("+bind(at)+", "+bind(id)+")")
	}
	const order = " ORDER BY processed_at DESC, id DESC LIMIT "
	lim := bind(limit + 1)
	where := func(extra ...string) string {
		all := append(extra, conds...)
		if len(all) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(all, " AND ")
	}
	if f.Account == uuid.Nil {
		return selectTransfer + where() + order + lim, args, nil
	}
	acct := bind(f.Account)
	query := `SELECT * FROM ((` + selectTransfer + where("from_account = "+acct) + order + lim + `)
		UNION ALL (` + selectTransfer + where("to_account = "+acct, "from_account IS DISTINCT FROM "+acct) + order + lim + `)) AS t` +
		order + lim
	return query, args, nil
}

// micros truncates t to the database's precision, so that "at or before t"
// keeps its meaning: rounding up could take in a row after t.
func micros(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// SearchEntries pages through an account's statement, newest first, within
// f. cursor is "" for the first page or the previous page's next cursor
// (an entry version); next is "" after the last page.
//
// The time bounds are first turned into version bounds by
// entries_version_at (migration 00006), a binary search of the primary
// key, so that the page is a walk of the primary key however far back the
// window lies. They are bound as numbers rather than computed inside the
// statement: the planner then sees how many versions the window spans and
// walks the key backwards for a page, where an opaque bound made it gather
// the whole window and sort it. The created_at conditions restate the
// window for the rows the version bounds let through.
func (s *Store) SearchEntries(ctx context.Context, accountID uuid.UUID, f transfer.EntryFilter, cursor string, limit int) ([]transfer.Entry, string, error) {
	var above, upTo int64
	if !f.After.IsZero() || !f.Before.IsZero() {
		var a, b *int64
		// NULL for a bound not asked for (the function is STRICT) or for an
		// unknown account, which has no entries to list.
		if err := s.pool.QueryRow(ctx, `SELECT entries_version_at($1, $2), entries_version_at($1, $3)`,
			accountID, nullTime(f.After), nullTime(f.Before)).Scan(&a, &b); err != nil {
			return nil, "", fmt.Errorf("list entries: %w", err)
		}
		if (!f.After.IsZero() && a == nil) || (!f.Before.IsZero() && b == nil) {
			return nil, "", nil
		}
		if a != nil {
			above = *a
		}
		if b != nil {
			upTo = *b
		}
	}
	query, args, err := searchEntriesQuery(accountID, f, above, upTo, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list entries: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return nil, "", fmt.Errorf("list entries: %w", err)
	}
	if len(list) <= limit {
		return list, "", nil
	}
	list = list[:limit]
	return list, strconv.FormatInt(list[limit-1].Version, 10), nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	m := micros(t)
	return &m
}

// searchEntriesQuery builds SearchEntries' statement: with f.After, the
// versions above above; with f.Before, those up to upTo. It asks for
// limit+1 rows, so that a full page tells whether another follows.
func searchEntriesQuery(accountID uuid.UUID, f transfer.EntryFilter, above, upTo int64, cursor string, limit int) (string, []any, error) {
	before := int64(1<<63 - 1)
	if cursor != "" {
		v, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || v < 1 {
			return "", nil, transfer.ErrBadCursor
		}
		before = v
	}
	query := `SELECT account_id, version, transfer_id, kind, direction, amount::text,
			balance_after::text, counterparty, currency, created_at
		FROM entries WHERE account_id = $1 AND version < $2`
	args := []any{accountID, before}
	bind := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.After.IsZero() {
		query += ` AND version > ` + bind(above) + ` AND created_at > ` + bind(micros(f.After))
	}
	if !f.Before.IsZero() {
		query += ` AND version <= ` + bind(upTo) + ` AND created_at <= ` + bind(micros(f.Before))
	}
	query += ` ORDER BY version DESC LIMIT ` + bind(limit+1)
	return query, args, nil
}

func scanEntry(r pgx.CollectableRow) (transfer.Entry, error) {
	var e transfer.Entry
	var kind, dir, amount, after string
	var counterparty *uuid.UUID
	if err := r.Scan(&e.AccountID, &e.Version, &e.TransferID, &kind, &dir, &amount, &after,
		&counterparty, &e.Currency, &e.CreatedAt); err != nil {
		return e, err
	}
	e.Kind, e.Direction = transfer.Kind(kind), transfer.Direction(dir)
	if counterparty != nil {
		e.Counterparty = *counterparty
	}
	e.CreatedAt = e.CreatedAt.UTC()
	var err error
	if e.Amount, err = decimal.NewFromString(amount); err != nil {
		return e, err
	}
	e.BalanceAfter, err = decimal.NewFromString(after)
	return e, err
}

// balanceAtQuery reads an account's currency, balance, available balance
// and entry version as of $2.
const balanceAtQuery = `SELECT a.currency, coalesce(e.balance_after, 0)::text,
		(coalesce(e.balance_after, 0) - h.held)::text, v.version
	FROM accounts a
	CROSS JOIN LATERAL (SELECT entries_version_at(a.id, $2) AS version) v
	LEFT JOIN entries e ON e.account_id = a.id AND e.version = v.version
	CROSS JOIN LATERAL (SELECT coalesce(sum(amount), 0) AS held FROM holds
		WHERE from_account = a.id AND created_at <= $2 AND (state = 'held' OR updated_at > $2)) h
	WHERE a.id = $1`

// BalanceAt reads an account's balance as of at: after its last entry
// created at or before at. A zero at reads the balance now, from the
// account itself, with At set to the database's clock. An unknown account
// is transfer.ErrNotFound.
//
// One statement, one snapshot: the entry and the holds are read as of the
// same moment, so a hold settled by the batch that wrote the entry is seen
// settled with it. The holds are summed over the account's holds created
// up to at (holds_from_idx); the accounts row keeps only the present sum.
func (s *Store) BalanceAt(ctx context.Context, id uuid.UUID, at time.Time) (transfer.Balance, error) {
	b := transfer.Balance{AccountID: id}
	var balance, available string
	var err error
	if at.IsZero() {
		err = s.pool.QueryRow(ctx, `SELECT currency, balance::text, (balance - held)::text, version, statement_timestamp()
			FROM accounts WHERE id = $1`, id).Scan(&b.Currency, &balance, &available, &b.Version, &b.At)
	} else {
		b.At = micros(at)
		err = s.pool.QueryRow(ctx, balanceAtQuery, id, b.At).Scan(&b.Currency, &balance, &available, &b.Version)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return transfer.Balance{}, transfer.ErrNotFound
	}
	if err != nil {
		return transfer.Balance{}, fmt.Errorf("balance at: %w", err)
	}
	b.At = b.At.UTC()
	if b.Balance, err = decimal.NewFromString(balance); err != nil {
		return transfer.Balance{}, fmt.Errorf("balance at: %w", err)
	}
	if b.Available, err = decimal.NewFromString(available); err != nil {
		return transfer.Balance{}, fmt.Errorf("balance at: %w", err)
	}
	return b, nil
}
