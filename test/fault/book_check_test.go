package fault

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// TestBookCheckerCatchesDamage applies a seeded load with the real store,
// checks that the book checker finds nothing, then damages the ledger in
// the ways a broken service would and checks that each is caught by the
// check meant for it. A checker that finds nothing proves nothing.
func TestBookCheckerCatchesDamage(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, s^0x5eed))
	w := newWorld(rng, 4, 8)
	m := newLoadModel(rng, w, 0, 0, 0)

	url := dbtest.URL(t)
	store, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, a := range w.Accounts {
		if _, _, err := store.CreateAccount(ctx, a.ID, a.Currency); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	m.holdShare, m.accepted = holdShare, rec.acceptedAt
	apply := func(batch []*op) {
		reqs := make([]transfer.Request, len(batch))
		for j, o := range batch {
			rec.sent(o)
			reqs[j] = transfer.Request{ID: o.ID, Kind: o.Kind, From: o.From, To: o.To, Currency: o.Currency,
				HoldID: o.HoldID, Reverses: o.Reverses, Timeout: time.Duration(o.Timeout) * time.Second, AcceptedAt: time.Now(),
				Metadata: o.Metadata, Reference: o.Reference}
			if o.Kind.NamesNoAccount() {
				// Posts, voids and reversals name no account.
				reqs[j].From, reqs[j].To, reqs[j].Currency = uuid.Nil, uuid.Nil, ""
			}
			if o.Amount != "" {
				reqs[j].Amount = mustAmount(t, o.Amount)
			}
		}
		if _, err := store.ApplyBatch(ctx, reqs); err != nil {
			t.Fatal(err)
		}
		for _, o := range batch {
			rec.accepted(o.ID, "store", 0)
		}
	}
	funding := m.fundingOps()
	for i := 0; i < len(funding); i += 25 {
		apply(funding[i:min(i+25, len(funding))])
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// holdsReady says whether the ledger has a hold in every state the
	// damages below need: a seed may draw 600 requests without one, so the
	// drawing goes on until it has them (bounded, so a broken model fails).
	holdsReady := func() bool {
		var held, posted, voided, expiring int
		err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'held'),
			count(*) FILTER (WHERE state = 'posted'), count(*) FILTER (WHERE state = 'voided'),
			count(*) FILTER (WHERE state = 'held' AND expires_at < now() + interval '5 seconds')
			FROM holds`).Scan(&held, &posted, &voided, &expiring)
		if err != nil {
			t.Fatal(err)
		}
		return held > 0 && posted > 0 && voided > 0 && expiring > 0
	}
	// Drawn a batch at a time, so that posts, voids and reversals name
	// requests already applied.
	for n := 0; n < 600 || (n < 5000 && !holdsReady()); {
		var batch []*op
		for len(batch) < 25 {
			if o := m.next(); !o.GatewayRefuses {
				batch = append(batch, o)
			}
		}
		apply(batch)
		n += len(batch)
	}
	// The holds with a short timeout expire, as the workers' sweep would
	// expire them a few seconds later.
	if _, err := store.ExpireHolds(ctx, time.Now().Add(5*time.Second), 10000); err != nil {
		t.Fatal(err)
	}
	// Every short timeout ended seconds ago (ExpireHolds above expired
	// them), so a hold still held past its timeout is one the sweep missed.
	opts := checkOptions{SweepWithin: 10 * time.Second}
	rep, err := checkBook(ctx, conn, nil, rec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clean ledger:\n%s", rep)
	if rep.Violations.total() != 0 || rep.Applied == 0 || rep.Rejected == 0 {
		t.Fatalf("a clean ledger must pass with applied and rejected requests:\n%s", rep)
	}
	for _, state := range []transfer.HoldState{transfer.HoldStateHeld, transfer.HoldStatePosted, transfer.HoldStateVoided, transfer.HoldStateExpired} {
		if rep.Holds[state] == 0 {
			t.Fatalf("the clean ledger has no hold %s; the damages below need one:\n%s", state, rep)
		}
	}
	if rep.Reversed == 0 || rep.PostedInPart == 0 {
		t.Fatalf("the clean ledger must have reversals and partial posts:\n%s", rep)
	}

	// Each damage runs in a transaction that is rolled back afterwards, so
	// the next starts from the clean ledger.
	// prep runs first, in the same transaction: it drops the constraint
	// the damage would break, as a broken migration might have.
	damages := []struct {
		name  string
		prep  string
		sql   string
		check string
	}{
		{"a transfer applied twice: its entries written again", "", `
			WITH t AS (SELECT id FROM transfers WHERE status = 'applied' AND kind = 'deposit' LIMIT 1),
			     e AS (SELECT * FROM entries WHERE transfer_id = (SELECT id FROM t))
			INSERT INTO entries SELECT account_id, version + 100000, transfer_id, kind, direction, amount,
				balance_after + amount, counterparty, currency, created_at FROM e`, checkEntries},
		{"an accepted request lost", "", `DELETE FROM transfers WHERE id = (SELECT id FROM transfers WHERE status = 'rejected' LIMIT 1)`, checkLost},
		{"money created: a balance raised", "", `UPDATE accounts SET balance = balance + 1 WHERE id = (SELECT account_id FROM entries LIMIT 1)`, checkConservation},
		{"a running balance that does not replay", "", `UPDATE entries SET balance_after = balance_after + 1
			WHERE (account_id, version) = (SELECT account_id, version FROM entries ORDER BY version DESC LIMIT 1)`, checkReplay},
		{"a debit applied out of acceptance order", "", `
			UPDATE transfers SET submitted_at = now() + interval '1 hour'
			WHERE id = (SELECT transfer_id FROM entries e WHERE direction = 'debit'
				AND EXISTS (SELECT 1 FROM entries l WHERE l.account_id = e.account_id AND l.direction = 'debit' AND l.version > e.version)
				LIMIT 1)`, checkOrder},
		{"a deposit rejected for no reason of its own", "", `UPDATE transfers SET status = 'rejected', reason = 'insufficient_funds'
			WHERE id = (SELECT id FROM transfers WHERE kind = 'deposit' AND status = 'applied' LIMIT 1)`, checkOutcome},
		{"a resubmission with another amount replaced the first", "", `UPDATE transfers SET amount = amount + 1
			WHERE id = (SELECT id FROM transfers WHERE status = 'rejected' LIMIT 1)`, checkFields},
		{"metadata stored other than sent", "", `UPDATE transfers SET metadata = coalesce(metadata, '{}') || '{"forged":"x"}'
			WHERE id = (SELECT id FROM transfers WHERE status = 'applied' LIMIT 1)`, checkFields},
		{"a reference stored other than sent", "", `UPDATE transfers SET reference = 'forged-' || id
			WHERE id = (SELECT id FROM transfers WHERE status = 'applied' LIMIT 1)`, checkFields},
		{"a transfer nobody sent", "", `INSERT INTO transfers (id, kind, status, reason, to_account, amount, currency, fingerprint, submitted_at, processed_at)
			VALUES (gen_random_uuid(), 'deposit', 'rejected', 'account_not_exist', gen_random_uuid(), 1, 'USD', decode(repeat('00', 32), 'hex'), now(), now())`, checkPhantom},

		// Holds.
		{name: "available below zero: held above the balance", prep: `ALTER TABLE accounts DROP CONSTRAINT accounts_held_check`,
			sql: `UPDATE accounts SET held = held + balance + 1 WHERE id = (SELECT from_account FROM holds WHERE state = 'held' LIMIT 1)`, check: checkAvailable},
		{name: "held below zero", prep: `ALTER TABLE accounts DROP CONSTRAINT accounts_held_check`,
			sql: `UPDATE accounts SET held = -1 WHERE id = (SELECT account_id FROM entries LIMIT 1)`, check: checkAvailable},
		{name: "a hold released without its account's held", sql: `UPDATE holds SET state = 'voided', updated_at = now()
			WHERE id = (SELECT id FROM holds WHERE state = 'held' LIMIT 1)`, check: checkAvailable},
		{name: "a hold row no request explains", sql: `INSERT INTO holds (id, from_account, to_account, amount, currency, state, created_at, updated_at)
			SELECT gen_random_uuid(), from_account, to_account, amount, currency, 'voided', now(), now() FROM holds LIMIT 1`, check: checkHolds},
		{name: "an applied hold without its row", sql: `DELETE FROM holds WHERE id = (SELECT id FROM holds WHERE state = 'voided' LIMIT 1)`, check: checkHolds},
		{name: "a hold settled twice: a second post applied", sql: `UPDATE transfers SET status = 'applied', reason = NULL
			WHERE id = (SELECT id FROM transfers WHERE kind IN ('post', 'void') AND reason IN ('hold_already_posted', 'hold_already_voided') LIMIT 1)`, check: checkHolds},
		{name: "posted more than the hold reserved", prep: `ALTER TABLE holds DROP CONSTRAINT holds_check`,
			sql: `UPDATE holds SET posted_amount = amount + 1 WHERE id = (SELECT id FROM holds WHERE state = 'posted' LIMIT 1)`, check: checkHolds},
		{name: "a posted hold whose post moved another amount", sql: `UPDATE holds SET posted_amount = posted_amount / 2
			WHERE id = (SELECT id FROM holds WHERE state = 'posted' LIMIT 1)`, check: checkHolds},
		{name: "an expired hold with an applied post", sql: `UPDATE holds SET state = 'expired', posted_amount = 0, expires_at = created_at
			WHERE id = (SELECT id FROM holds WHERE state = 'posted' LIMIT 1)`, check: checkHolds},
		{name: "a post applied after its hold's timeout", sql: `UPDATE holds SET expires_at = created_at
			WHERE id = (SELECT id FROM holds WHERE state = 'posted' LIMIT 1)`, check: checkHolds},
		{name: "a hold the sweep never expired", sql: `UPDATE holds SET expires_at = now() - interval '1 minute'
			WHERE id = (SELECT id FROM holds WHERE state = 'held' LIMIT 1)`, check: checkHolds},
		{name: "a post rejected as expired, its hold never expired", sql: `UPDATE transfers SET reason = 'hold_expired'
			WHERE id = (SELECT id FROM transfers WHERE kind IN ('post', 'void') AND reason IN ('hold_already_posted', 'hold_already_voided') LIMIT 1)`, check: checkHolds},
		{name: "a post's entries the wrong way round", sql: `UPDATE entries SET direction = CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END
			WHERE transfer_id = (SELECT id FROM transfers WHERE kind = 'post' AND status = 'applied' LIMIT 1)`, check: checkEntries},
		{name: "a post's entries of another kind", sql: `UPDATE entries SET kind = 'transfer'
			WHERE transfer_id = (SELECT id FROM transfers WHERE kind = 'post' AND status = 'applied' LIMIT 1)`, check: checkEntries},

		// Reversals.
		{name: "reversed_amount that is not the sum of the reversals", sql: `UPDATE transfers SET reversed_amount = 0
			WHERE id = (SELECT id FROM transfers WHERE reversed_amount > 0 LIMIT 1)`, check: checkReversals},
		{name: "reversed past the amount", prep: `ALTER TABLE transfers DROP CONSTRAINT transfers_reversed_amount_check`,
			sql: `UPDATE transfers SET reversed_amount = amount + 1 WHERE id = (SELECT id FROM transfers WHERE reversed_amount > 0 LIMIT 1)`, check: checkReversals},
		{name: "a reversal applied for a rejected transfer", sql: `UPDATE transfers SET reverses = (SELECT id FROM transfers WHERE status = 'rejected' AND kind = 'transfer' LIMIT 1)
			WHERE id = (SELECT id FROM transfers WHERE kind = 'reversal' AND status = 'applied' LIMIT 1)`, check: checkReversals},
		{name: "a reversal that moves money onward, not back", sql: `UPDATE transfers SET from_account = to_account, to_account = from_account
			WHERE id = (SELECT id FROM transfers WHERE kind = 'reversal' AND status = 'applied' AND from_account IS NOT NULL AND to_account IS NOT NULL LIMIT 1)`, check: checkReversals},
		{name: "a reversal's entries the wrong way round", sql: `UPDATE entries SET direction = CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END
			WHERE transfer_id = (SELECT id FROM transfers WHERE kind = 'reversal' AND status = 'applied' LIMIT 1)`, check: checkEntries},
		{name: "a reversal rejected as exceeding, though it fit", sql: `
			WITH r AS (SELECT r.id, r.reverses FROM transfers r JOIN transfers o ON o.id = r.reverses
				WHERE r.kind = 'reversal' AND r.status = 'applied' AND o.reversed_amount = r.amount AND r.amount < o.amount LIMIT 1),
			     o AS (UPDATE transfers SET reversed_amount = 0 WHERE id = (SELECT reverses FROM r))
			UPDATE transfers SET status = 'rejected', reason = 'reversal_exceeds_transfer' WHERE id = (SELECT id FROM r)`, check: checkReversals},
		{name: "money lost: a deposit's reversal counted bigger than its entry", sql: `UPDATE transfers SET amount = amount + 1
			WHERE id = (SELECT id FROM transfers WHERE kind = 'reversal' AND status = 'applied' AND to_account IS NULL LIMIT 1)`, check: checkConservation},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) //nolint:errcheck // undoes the damage
			if d.prep != "" {
				if _, err := tx.Exec(ctx, d.prep); err != nil {
					t.Fatal(err)
				}
			}
			tag, err := tx.Exec(ctx, d.sql)
			if err != nil {
				t.Fatal(err)
			}
			if tag.RowsAffected() == 0 {
				t.Fatalf("the damage touched no row")
			}
			ledger, err := readLedger(ctx, tx)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := checkLedger(ctx, ledger, nil, rec, opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violations.count[d.check] == 0 {
				t.Fatalf("check %q missed it; found:%s", d.check, rep.Violations)
			}
		})
	}
}

func mustAmount(t testing.TB, s string) decimal.Decimal {
	t.Helper()
	d, err := transfer.ParseAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
