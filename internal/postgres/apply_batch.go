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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/trace"

	"github.com/wallet/wallet/internal/transfer"
)

// maxAttempts bounds how often ApplyBatch reruns a transaction that failed
// for a reason another attempt can cure (deadlock, serialization, a unique
// race with a concurrent batch, a dropped connection).
const maxAttempts = 5

// ApplyBatch applies reqs, in order, in one transaction and returns one
// outcome per request. Ids decided before (in an earlier batch or earlier in
// this one) are not applied again: their stored outcome comes back as a
// replay, or as a conflict when the fields differ. When it returns an error
// nothing was committed and the same batch may be applied again; an error
// matching transfer.ErrRefused will meet the same refusal.
func (s *Store) ApplyBatch(ctx context.Context, reqs []transfer.Request) (_ []transfer.Outcome, err error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	attempts := 0
	if s.tracer != nil {
		var span trace.Span
		ctx, span = s.startApply(ctx, len(reqs))
		defer func() { endApply(span, attempts, err) }()
	}
	var outcomes []transfer.Outcome
	err = retry(ctx, func() error {
		var err error
		attempts++
		outcomes, err = s.applyOnce(ctx, reqs)
		return err
	})
	if err != nil {
		if isPermanent(err) {
			err = &kindError{kind: transfer.ErrRefused, err: err}
		}
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	return outcomes, nil
}

// retry runs a transaction, and again after a failure another attempt can
// cure (see retryable), up to maxAttempts times with a growing pause.
func retry(ctx context.Context, once func() error) error {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := once()
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (s *Store) applyOnce(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	currencies, err := s.currenciesFor(ctx, reqs)
	if err != nil {
		return nil, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	book, err := loadBook(ctx, tx, reqs)
	if err != nil {
		return nil, err
	}
	book.Precisions = currencies
	// The batch's clock is read once its rows are locked: whatever a
	// concurrent transaction (another batch, the expiry sweep) committed
	// before we got the locks happened before now, so a post rejected
	// hold_expired is never dated before the hold's expiry.
	now := time.Now().UTC().Truncate(time.Microsecond)
	// The decisions stored before this batch: a new decision under one of
	// these ids replaces a rejection, the rest are inserted.
	stored := make(map[uuid.UUID]int, len(book.Decided))
	for id, t := range book.Decided {
		stored[id] = t.Decisions
	}

	// Postgres keeps microseconds; truncating here makes the outcome we
	// return equal to what a later read returns.
	in := make([]transfer.Request, len(reqs))
	for i, r := range reqs {
		if r.AcceptedAt.IsZero() {
			r.AcceptedAt = now
		}
		r.AcceptedAt = r.AcceptedAt.UTC().Truncate(time.Microsecond)
		in[i] = r
	}
	outcomes, changes := book.Apply(in, now)
	if err := saveChanges(ctx, tx, changes, stored, now); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return outcomes, nil
}

// loadBook locks every account the batch names and reads the transfers
// already decided for its ids. The accounts are locked first, in one
// statement, in id order: concurrent batches then wait for each other
// instead of deadlocking, and any batch that decided one of our ids while
// holding those locks has committed by the time the transfers are read.
// The stored transfers are locked too (in primary-key order, after the
// accounts, in every batch): a 2020-API retry may decide a rejected id
// again from an account another batch does not lock, and two such retries
// must not both see the rejection. An id with no row yet is guarded by the
// primary key instead: the second insert fails and its batch is rerun.
//
// Posts, voids and reversals name a hold or a request, not the accounts
// they move money between. For a batch with any of them, one more round
// trip first reads those accounts without locking; they are locked with
// the rest, and the holds and reversed requests are read after the locks,
// the holds locked last (always after their sender's account, here and in
// ExpireHolds). A hold's accounts never change and neither do an applied
// request's; a reversed request rejected at the first read may be decided
// again with other accounts before the second, and then the batch is
// rerun. A batch of transfers, deposits, withdrawals and holds makes no
// extra round trip and runs no extra statement.
func loadBook(ctx context.Context, tx pgx.Tx, reqs []transfer.Request) (*transfer.Book, error) {
	ids := make([]uuid.UUID, 0, len(reqs))
	accountIDs := make([]uuid.UUID, 0, 2*len(reqs))
	seen := make(map[uuid.UUID]bool, 2*len(reqs))
	addAccount := func(id uuid.UUID) {
		if id != uuid.Nil && !seen[id] {
			seen[id] = true
			accountIDs = append(accountIDs, id)
		}
	}
	var holdIDs, targets []uuid.UUID
	var refs []string
	for _, r := range reqs {
		ids = append(ids, r.ID)
		if r.Reference != "" {
			refs = append(refs, r.Reference)
		}
		addAccount(r.From)
		addAccount(r.To)
		switch {
		case r.Kind.Settles() && r.HoldID != uuid.Nil:
			holdIDs = append(holdIDs, r.HoldID)
		case r.Kind == transfer.KindReversal && r.Reverses != uuid.Nil:
			targets = append(targets, r.Reverses)
			ids = append(ids, r.Reverses)
		}
	}
	if len(holdIDs)+len(targets) > 0 {
		if err := readNamedAccounts(ctx, tx, holdIDs, targets, addAccount); err != nil {
			return nil, err
		}
	}
	sort.Slice(accountIDs, func(i, j int) bool { return string(accountIDs[i][:]) < string(accountIDs[j][:]) })

	book := &transfer.Book{
		Accounts: make(map[uuid.UUID]*transfer.Account, len(accountIDs)),
		Decided:  make(map[uuid.UUID]transfer.Transfer),
		Holds:    make(map[uuid.UUID]*transfer.Hold, len(holdIDs)),
	}
	batch := &pgx.Batch{}
	queueLockAccounts(batch, accountIDs, book)
	batch.Queue(selectTransfer+` WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, binaryUUIDs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			t, err := scanTransfer(rows)
			if err != nil {
				return err
			}
			book.Decided[t.ID] = t
		}
		return rows.Err()
	})
	if len(holdIDs) > 0 {
		queueLockHolds(batch, holdIDs, book)
	}
	if len(refs) > 0 {
		queueReferences(batch, refs, book)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	for _, h := range book.Holds {
		if !seen[h.From] || !seen[h.To] {
			return nil, fmt.Errorf("hold %s: %w", h.ID, errDecisionChanged)
		}
	}
	for _, id := range targets {
		t, ok := book.Decided[id]
		if ok && t.Status == transfer.StatusApplied && ((t.From != uuid.Nil && !seen[t.From]) || (t.To != uuid.Nil && !seen[t.To])) {
			return nil, fmt.Errorf("reversed transfer %s: %w", id, errDecisionChanged)
		}
	}
	return book, nil
}

// readNamedAccounts reads, without locking, the accounts of the holds and
// reversed requests a batch names, and passes them to add.
func readNamedAccounts(ctx context.Context, tx pgx.Tx, holdIDs, targets []uuid.UUID, add func(uuid.UUID)) error {
	batch := &pgx.Batch{}
	scan := func(rows pgx.Rows) error {
		for rows.Next() {
			var from, to pgtype.UUID
			if err := rows.Scan(&from, &to); err != nil {
				return err
			}
			if from.Valid {
				add(from.Bytes)
			}
			if to.Valid {
				add(to.Bytes)
			}
		}
		return rows.Err()
	}
	if len(holdIDs) > 0 {
		batch.Queue(`SELECT from_account, to_account FROM holds WHERE id = ANY($1)`, binaryUUIDs(holdIDs)).Query(scan)
	}
	if len(targets) > 0 {
		batch.Queue(`SELECT from_account, to_account FROM transfers WHERE id = ANY($1)`, binaryUUIDs(targets)).Query(scan)
	}
	return tx.SendBatch(ctx, batch).Close()
}

// queueLockAccounts locks the accounts ids (sorted) and reads them into book.
func queueLockAccounts(batch *pgx.Batch, ids []uuid.UUID, book *transfer.Book) {
	batch.Queue(`SELECT id, currency, balance::text, held::text, version FROM accounts
		WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, binaryUUIDs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var a transfer.Account
			var balance, held string
			var id [16]byte
			if err := rows.Scan(&id, &a.Currency, &balance, &held, &a.Version); err != nil {
				return err
			}
			a.ID = id
			var err error
			if a.Balance, err = decimal.NewFromString(balance); err != nil {
				return fmt.Errorf("account %s balance %q: %w", a.ID, balance, err)
			}
			if a.Held, err = decimal.NewFromString(held); err != nil {
				return fmt.Errorf("account %s held %q: %w", a.ID, held, err)
			}
			book.Accounts[a.ID] = &a
		}
		return rows.Err()
	})
}

// queueReferences reads which of refs earlier requests took, in the round
// trip that locks the batch's rows. The rows are not locked: a concurrent
// batch that takes one of refs first makes this batch's insert fail on
// transfers_reference_key (after waiting for that batch to commit), and
// the rerun sees the reference taken and rejects the request
// reference_already_used.
func queueReferences(batch *pgx.Batch, refs []string, book *transfer.Book) {
	book.References = make(map[string]uuid.UUID, len(refs))
	batch.Queue(`SELECT reference, id FROM transfers WHERE reference = ANY($1)`, refs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ref string
			var id [16]byte
			if err := rows.Scan(&ref, &id); err != nil {
				return err
			}
			book.References[ref] = id
		}
		return rows.Err()
	})
}

// queueLockHolds locks the holds ids and reads them into book. Callers
// hold the locks of the holds' senders already.
func queueLockHolds(batch *pgx.Batch, ids []uuid.UUID, book *transfer.Book) {
	batch.Queue(selectHold+` WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, binaryUUIDs(ids)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			h, err := scanHold(rows)
			if err != nil {
				return err
			}
			book.Holds[h.ID] = &h
		}
		return rows.Err()
	})
}

// saveChanges writes a batch's results with one statement per table, plus
// one statement per transfer that replaces a stored rejection (a 2020-API
// retry: rare, and each checked on its own). stored maps the ids decided
// before the batch to their decision counts.
func saveChanges(ctx context.Context, tx pgx.Tx, ch transfer.Changes, stored map[uuid.UUID]int, now time.Time) error {
	batch := &pgx.Batch{}
	fresh := make([]transfer.Transfer, 0, len(ch.Transfers))
	for _, t := range ch.Transfers {
		prev, ok := stored[t.ID]
		var err error
		switch {
		case ok:
			err = queueRedecision(batch, t, prev)
		case t.Decisions > 1:
			err = queueInsertRedecided(batch, t)
		default:
			fresh = append(fresh, t)
		}
		if err != nil {
			return err
		}
	}
	if n := len(fresh); n > 0 {
		var (
			ids, froms, tos, attempts = make([][16]byte, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n), make([]pgtype.UUID, n)
			holdIDs, reverses         = make([]pgtype.UUID, n), make([]pgtype.UUID, n)
			kinds, statuses, currs    = make([]string, n), make([]string, n), make([]string, n)
			amounts                   = newNumericArray(n)
			reasons                   = make([]*string, n)
			fingerprints              = make([][]byte, n)
			submitted, processed      = make([]time.Time, n), make([]time.Time, n)
			metadata, references      = make([]*string, n), make([]*string, n)
		)
		for i, t := range fresh {
			var err error
			if metadata[i], err = requestMetadataJSON(t.Metadata); err != nil {
				return err
			}
			references[i] = nullString(t.Reference)
			ids[i], kinds[i], statuses[i] = t.ID, string(t.Kind), string(t.Status)
			froms[i], tos[i], attempts[i] = nullUUID(t.From), nullUUID(t.To), nullUUID(t.Attempt)
			holdIDs[i], reverses[i] = nullUUID(t.HoldID), nullUUID(t.Reverses)
			amounts.add(t.Amount)
			currs[i] = t.Currency
			reasons[i] = nullReason(t.Reason)
			fp := t.Fingerprint
			fingerprints[i] = fp[:]
			submitted[i], processed[i] = t.AcceptedAt, t.ProcessedAt
		}
		// Metadata and references travel in the same statement, as text
		// cast to jsonb: no extra round trip, and nothing for the many
		// requests without them but two NULLs.
		batch.Queue(`INSERT INTO transfers
			(id, kind, status, reason, from_account, to_account, amount, currency, fingerprint, submitted_at, processed_at, attempt,
				hold_id, reverses, metadata, reference)
			SELECT i, k, s, r, f, t, a, c, fp, sa, pa, at, h, rv, m::jsonb, ref
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[],
				$7::numeric[], $8::text[], $9::bytea[], $10::timestamptz[], $11::timestamptz[], $12::uuid[], $13::uuid[], $14::uuid[],
				$15::text[], $16::text[]) AS u(i, k, s, r, f, t, a, c, fp, sa, pa, at, h, rv, m, ref)`,
			ids, kinds, statuses, reasons, froms, tos, amounts.literal(), currs, fingerprints, submitted, processed, attempts, holdIDs, reverses,
			metadata, references)
	}
	if n := len(ch.Entries); n > 0 {
		var (
			accounts, transfers = make([][16]byte, n), make([][16]byte, n)
			counterparties      = make([]pgtype.UUID, n)
			versions            = make([]int64, n)
			kinds, dirs, currs  = make([]string, n), make([]string, n), make([]string, n)
			amounts, afters     = newNumericArray(n), newNumericArray(n)
		)
		for i, e := range ch.Entries {
			accounts[i], versions[i], transfers[i] = e.AccountID, e.Version, e.TransferID
			kinds[i], dirs[i] = string(e.Kind), string(e.Direction)
			amounts.add(e.Amount)
			afters.add(e.BalanceAfter)
			counterparties[i], currs[i] = nullUUID(e.Counterparty), e.Currency
		}
		batch.Queue(`INSERT INTO entries
			(account_id, version, transfer_id, kind, direction, amount, balance_after, counterparty, currency, created_at)
			SELECT a, v, t, k, d, am, b, c, cu, $10 FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[],
				$5::text[], $6::numeric[], $7::numeric[], $8::uuid[], $9::text[]) AS u(a, v, t, k, d, am, b, c, cu)`,
			accounts, versions, transfers, kinds, dirs, amounts.literal(), afters.literal(), counterparties, currs, now)
	}
	queueUpdateAccounts(batch, ch.Accounts, now)
	queueSaveHolds(batch, ch.Holds)
	if n := len(ch.Reversed); n > 0 {
		ids, amounts := make([][16]byte, n), newNumericArray(n)
		for i, t := range ch.Reversed {
			ids[i] = t.ID
			amounts.add(t.ReversedAmount)
		}
		// After the inserts above: a request may be reversed in the batch
		// that applied it.
		batch.Queue(`UPDATE transfers AS t SET reversed_amount = u.reversed
			FROM unnest($1::uuid[], $2::numeric[]) AS u(id, reversed)
			WHERE t.id = u.id AND t.status = 'applied'`, ids, amounts.literal()).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != int64(n) {
				return fmt.Errorf("update reversed amounts: %w", errDecisionChanged)
			}
			return nil
		})
	}
	if batch.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, batch).Close()
}

// queueUpdateAccounts writes the balance, held sum and version of accounts.
// No index covers these columns, so the update stays HOT.
func queueUpdateAccounts(batch *pgx.Batch, accounts []*transfer.Account, now time.Time) {
	n := len(accounts)
	if n == 0 {
		return
	}
	ids, balances, helds, versions := make([][16]byte, n), newNumericArray(n), newNumericArray(n), make([]int64, n)
	for i, a := range accounts {
		ids[i], versions[i] = a.ID, a.Version
		balances.add(a.Balance)
		helds.add(a.Held)
	}
	batch.Queue(`UPDATE accounts AS a SET balance = u.balance, held = u.held, version = u.version, updated_at = $5
		FROM unnest($1::uuid[], $2::numeric[], $3::numeric[], $4::bigint[]) AS u(id, balance, held, version)
		WHERE a.id = u.id`, ids, balances.literal(), helds.literal(), versions, now).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != int64(n) {
			return errors.New("update accounts: row count mismatch")
		}
		return nil
	})
}

// queueSaveHolds inserts new holds and rewrites changed ones. A stored hold
// only ever leaves 'held', and only under its sender's lock, which the
// batch holds: a rewrite of a hold no longer held would be a lost update,
// so it fails the batch (which is then rerun).
func queueSaveHolds(batch *pgx.Batch, holds []*transfer.Hold) {
	n := len(holds)
	if n == 0 {
		return
	}
	var (
		ids, froms, tos  = make([][16]byte, n), make([][16]byte, n), make([][16]byte, n)
		amounts, posted  = newNumericArray(n), newNumericArray(n)
		currs, state     = make([]string, n), make([]string, n)
		expires          = make([]pgtype.Timestamptz, n)
		created, updated = make([]time.Time, n), make([]time.Time, n)
	)
	for i, h := range holds {
		ids[i], froms[i], tos[i] = h.ID, h.From, h.To
		amounts.add(h.Amount)
		posted.add(h.PostedAmount)
		currs[i], state[i] = h.Currency, string(h.State)
		expires[i] = pgtype.Timestamptz{Time: h.ExpiresAt, Valid: !h.ExpiresAt.IsZero()}
		created[i], updated[i] = h.CreatedAt, h.UpdatedAt
	}
	batch.Queue(`INSERT INTO holds
		(id, from_account, to_account, amount, posted_amount, currency, state, expires_at, created_at, updated_at)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::numeric[], $5::numeric[], $6::text[], $7::text[],
			$8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, posted_amount = excluded.posted_amount,
			updated_at = excluded.updated_at
		WHERE holds.state = 'held'`,
		ids, froms, tos, amounts.literal(), posted.literal(), currs, state, expires, created, updated).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != int64(n) {
			return fmt.Errorf("save holds: %w", errDecisionChanged)
		}
		return nil
	})
}

// errDecisionChanged means a stored rejection changed between loadBook and
// its replacement; the transfer row lock makes it a bug, and rerunning the
// batch is still the safe answer.
var errDecisionChanged = errors.New("stored decision changed during the batch")

// queueRedecision replaces the stored rejection of t.ID, which had prev
// decisions, by t. The WHERE clause refuses anything but that rejection.
func queueRedecision(batch *pgx.Batch, t transfer.Transfer, prev int) error {
	fp := t.Fingerprint
	metadata, err := requestMetadataJSON(t.Metadata)
	if err != nil {
		return err
	}
	batch.Queue(`UPDATE transfers SET kind = $2, status = $3, reason = $4, from_account = $5, to_account = $6,
			amount = $7, currency = $8, fingerprint = $9, submitted_at = $10, processed_at = $11,
			attempt = $12, decisions = $13, superseded = $14, hold_id = $16, reverses = $17,
			metadata = $18::text::jsonb, reference = $19
		WHERE id = $1 AND status = 'rejected' AND decisions = $15`,
		[16]byte(t.ID), string(t.Kind), string(t.Status), nullReason(t.Reason), nullUUID(t.From), nullUUID(t.To),
		t.Amount.String(), t.Currency, fp[:], t.AcceptedAt, t.ProcessedAt,
		nullUUID(t.Attempt), t.Decisions, binaryUUIDs(t.Superseded), prev, nullUUID(t.HoldID), nullUUID(t.Reverses),
		metadata, nullString(t.Reference)).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("transfer %s: %w", t.ID, errDecisionChanged)
		}
		return nil
	})
	return nil
}

// queueInsertRedecided inserts a transfer first decided and then decided
// again within this batch.
func queueInsertRedecided(batch *pgx.Batch, t transfer.Transfer) error {
	fp := t.Fingerprint
	metadata, err := requestMetadataJSON(t.Metadata)
	if err != nil {
		return err
	}
	batch.Queue(`INSERT INTO transfers
		(id, kind, status, reason, from_account, to_account, amount, currency, fingerprint, submitted_at, processed_at,
			attempt, decisions, superseded, hold_id, reverses, metadata, reference)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::text::jsonb, $18)`,
		[16]byte(t.ID), string(t.Kind), string(t.Status), nullReason(t.Reason), nullUUID(t.From), nullUUID(t.To),
		t.Amount.String(), t.Currency, fp[:], t.AcceptedAt, t.ProcessedAt,
		nullUUID(t.Attempt), t.Decisions, binaryUUIDs(t.Superseded), nullUUID(t.HoldID), nullUUID(t.Reverses),
		metadata, nullString(t.Reference))
	return nil
}

// requestMetadataJSON is the text of a request's metadata for its jsonb
// column, or nil (SQL NULL) when it has none: the many requests without
// metadata store nothing.
func requestMetadataJSON(m map[string]string) (*string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	s := string(b)
	return &s, nil
}

// numericArray builds a numeric[] parameter as the text of a PostgreSQL
// array literal, {1.25,3,...}, which pgx sends as it is. Given a []string
// for a numeric[] parameter, pgx first tries the binary format, which it
// has no encoding of a string into, and builds an error that prints the
// whole array with %#v before it falls back to text: a formatted copy of
// every amount column of every batch, thrown away. The literal also saves
// boxing each amount into an interface. A decimal's text is digits, an
// optional sign and point: nothing in it needs quoting.
type numericArray struct{ b []byte }

func newNumericArray(n int) *numericArray {
	b := make([]byte, 1, 2+8*n)
	b[0] = '{'
	return &numericArray{b: b}
}

func (a *numericArray) add(d decimal.Decimal) {
	if len(a.b) > 1 {
		a.b = append(a.b, ',')
	}
	a.b = append(a.b, d.String()...)
}

func (a *numericArray) literal() string { return string(append(a.b, '}')) }

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullReason(c transfer.Code) *string {
	if c == "" {
		return nil
	}
	r := string(c)
	return &r
}

// pgx encodes uuid.UUID through its driver.Valuer, as text; [16]byte and
// pgtype.UUID take the binary path, several times cheaper in a large batch.
func nullUUID(id uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: id != uuid.Nil}
}

func binaryUUIDs(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
