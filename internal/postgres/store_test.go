package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func newAccount(t testing.TB, s *postgres.Store, currency string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, _, err := s.CreateAccount(context.Background(), id, currency); err != nil {
		t.Fatalf("create account: %v", err)
	}
	return id
}

func deposit(to uuid.UUID, amount, currency string) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: to, Amount: dec(amount), Currency: currency}
}

func move(from, to uuid.UUID, amount, currency string) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: from, To: to, Amount: dec(amount), Currency: currency}
}

func apply(t testing.TB, s *postgres.Store, reqs ...transfer.Request) []transfer.Outcome {
	t.Helper()
	out, err := s.ApplyBatch(context.Background(), reqs)
	if err != nil {
		t.Fatalf("apply batch: %v", err)
	}
	if len(out) != len(reqs) {
		t.Fatalf("%d outcomes for %d requests", len(out), len(reqs))
	}
	return out
}

func balance(t testing.TB, s *postgres.Store, id uuid.UUID) decimal.Decimal {
	t.Helper()
	a, err := s.GetAccount(context.Background(), id)
	if err != nil {
		t.Fatalf("get account: %v", err)
	}
	return a.Balance
}

func TestOriginalScenario(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	a, b, btc := newAccount(t, s, "usd"), newAccount(t, s, "USD"), newAccount(t, s, "BTC")
	apply(t, s, deposit(a, "1000", "USD"), deposit(b, "100", "usd"), deposit(btc, "1", "BTC"))

	tr := move(a, b, "100.111", "USD")
	out := apply(t, s, tr)
	if out[0].Status() != transfer.StatusApplied || !out[0].Transfer.Amount.Equal(dec("100.11")) {
		t.Fatalf("transfer: %s/%s amount %s", out[0].Status(), out[0].Reason(), out[0].Transfer.Amount)
	}
	check := func() {
		t.Helper()
		if ga, gb := balance(t, s, a), balance(t, s, b); !ga.Equal(dec("899.89")) || !gb.Equal(dec("200.11")) {
			t.Fatalf("balances %s / %s, want 899.89 / 200.11", ga, gb)
		}
	}
	check()

	// A retry with the same id changes nothing and replays the outcome.
	out = apply(t, s, tr)
	if !out[0].Replayed || out[0].Status() != transfer.StatusApplied {
		t.Fatalf("retry: replayed=%v status=%s", out[0].Replayed, out[0].Status())
	}
	check()

	out = apply(t, s, move(a, b, "1001", "USD"), move(a, btc, "1", "USD"))
	if out[0].Reason() != transfer.CodeInsufficientFunds || out[1].Reason() != transfer.CodeReceiverAccountWrongCurrency {
		t.Fatalf("got %s, %s", out[0].Reason(), out[1].Reason())
	}
	check()

	stored, err := s.GetTransfer(context.Background(), tr.ID)
	if err != nil || stored.Status != transfer.StatusApplied || !stored.Amount.Equal(dec("100.11")) || stored.Currency != "USD" {
		t.Fatalf("stored transfer %+v, %v", stored, err)
	}
	entries, _, err := s.ListEntries(context.Background(), a, "", 10)
	if err != nil || len(entries) != 2 {
		t.Fatalf("entries of a: %d, %v", len(entries), err)
	}
	if e := entries[0]; e.TransferID != tr.ID || e.Direction != transfer.DirectionDebit || !e.BalanceAfter.Equal(dec("899.89")) || e.Counterparty != b {
		t.Fatalf("newest entry %+v", e)
	}
}

func TestEveryCodeThroughStore(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	usd, usd2, eur := newAccount(t, s, "USD"), newAccount(t, s, "USD"), newAccount(t, s, "EUR")
	apply(t, s, deposit(usd, "10", "USD"), deposit(eur, "10", "EUR"))
	missing := uuid.New()
	r := func(kind transfer.Kind, from, to uuid.UUID, amount, cur string) transfer.Request {
		return transfer.Request{ID: uuid.New(), Kind: kind, From: from, To: to, Amount: dec(amount), Currency: cur}
	}
	cases := []struct {
		req  transfer.Request
		want transfer.Code
	}{
		{r(transfer.KindTransfer, uuid.Nil, usd2, "1", "USD"), transfer.CodeSenderAccountIDIsEmpty},
		{r(transfer.KindTransfer, usd, uuid.Nil, "1", "USD"), transfer.CodeReceiverAccountIDIsEmpty},
		{r(transfer.KindTransfer, usd, usd, "1", "USD"), transfer.CodeAccountsMustBeDifferent},
		{r(transfer.KindTransfer, usd, usd2, "0.001", "USD"), transfer.CodeTransferAmountMustBePositive},
		{r(transfer.KindTransfer, usd, usd2, "1", "XXX"), transfer.CodeCurrencyNotSupported},
		{r(transfer.KindTransfer, usd, usd2, "10.01", "USD"), transfer.CodeInsufficientFunds},
		{r(transfer.KindTransfer, missing, usd2, "1", "USD"), transfer.CodeSenderAccountNotExist},
		{r(transfer.KindTransfer, usd, missing, "1", "USD"), transfer.CodeReceiverAccountNotExist},
		{r(transfer.KindTransfer, eur, usd2, "1", "USD"), transfer.CodeSenderAccountWrongCurrency},
		{r(transfer.KindTransfer, usd, eur, "1", "USD"), transfer.CodeReceiverAccountWrongCurrency},
		{r(transfer.KindDeposit, uuid.Nil, uuid.Nil, "1", "USD"), transfer.CodeAccountIDIsEmpty},
		{r(transfer.KindDeposit, uuid.Nil, missing, "1", "USD"), transfer.CodeAccountNotExist},
		{r(transfer.KindWithdrawal, eur, uuid.Nil, "1", "USD"), transfer.CodeAccountWrongCurrency},
		{r(transfer.KindWithdrawal, usd, uuid.Nil, "11", "USD"), transfer.CodeInsufficientFunds},
	}
	for _, c := range cases {
		out := apply(t, s, c.req)
		if out[0].Status() != transfer.StatusRejected || out[0].Reason() != c.want {
			t.Errorf("%s: got %s/%s, want %s", c.want, out[0].Status(), out[0].Reason(), c.want)
			continue
		}
		// The rejection is stored and final: a retry replays it.
		stored, err := s.GetTransfer(context.Background(), c.req.ID)
		if err != nil || stored.Status != transfer.StatusRejected || stored.Reason != c.want {
			t.Errorf("%s: stored %+v, %v", c.want, stored, err)
		}
		again := apply(t, s, c.req)
		if !again[0].Replayed || again[0].Reason() != c.want {
			t.Errorf("%s: retry gave %s replayed=%v", c.want, again[0].Reason(), again[0].Replayed)
		}
	}
	// transfer_id_is_empty has no id to store; transfer_id_conflict leaves the stored transfer alone.
	out := apply(t, s, transfer.Request{Kind: transfer.KindDeposit, To: usd, Amount: dec("1"), Currency: "USD"})
	if out[0].Reason() != transfer.CodeTransferIDIsEmpty {
		t.Errorf("empty id: %s", out[0].Reason())
	}
	first := deposit(usd2, "5", "USD")
	apply(t, s, first)
	changed := first
	changed.Amount = dec("500")
	out = apply(t, s, changed)
	if out[0].Reason() != transfer.CodeTransferIDConflict || !out[0].Conflict {
		t.Fatalf("conflict: %s", out[0].Reason())
	}
	if got := balance(t, s, usd2); !got.Equal(dec("5")) {
		t.Fatalf("conflict changed the balance to %s", got)
	}
	if !balance(t, s, usd).Equal(dec("10")) || !balance(t, s, eur).Equal(dec("10")) {
		t.Fatal("rejections moved money")
	}
}

func TestCreateAccountIdempotent(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	id := uuid.New()
	a, created, err := s.CreateAccount(ctx, id, "eur")
	if err != nil || !created || a.Currency != "EUR" || !a.Balance.IsZero() {
		t.Fatalf("create: %+v created=%v %v", a, created, err)
	}
	if _, created, err = s.CreateAccount(ctx, id, "EUR"); err != nil || created {
		t.Fatalf("same again: created=%v %v", created, err)
	}
	if _, _, err = s.CreateAccount(ctx, id, "USD"); !errors.Is(err, transfer.ErrAccountConflict) {
		t.Fatalf("other currency: %v", err)
	}
	if _, _, err = s.CreateAccount(ctx, uuid.New(), "XXX"); !errors.Is(err, transfer.ErrCurrencyNotSupported) {
		t.Fatalf("unknown currency: %v", err)
	}
	if _, err = s.GetAccount(ctx, uuid.New()); !errors.Is(err, transfer.ErrNotFound) {
		t.Fatalf("missing account: %v", err)
	}
	if _, err = s.GetTransfer(ctx, uuid.New()); !errors.Is(err, transfer.ErrNotFound) {
		t.Fatalf("missing transfer: %v", err)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	want := map[uuid.UUID]bool{}
	for i := 0; i < 7; i++ {
		want[newAccount(t, s, "JPY")] = true
	}
	seen := map[uuid.UUID]bool{}
	cursor, pages := "", 0
	for {
		page, next, err := s.ListAccounts(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range page {
			if seen[a.ID] {
				t.Fatalf("account %s listed twice", a.ID)
			}
			seen[a.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != len(want) || pages != 3 {
		t.Fatalf("listed %d accounts in %d pages, want 7 in 3", len(seen), pages)
	}
	if _, _, err := s.ListAccounts(ctx, "not-a-cursor", 3); !errors.Is(err, transfer.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}

	acc := newAccount(t, s, "JPY")
	for i := 1; i <= 5; i++ {
		apply(t, s, deposit(acc, fmt.Sprint(i), "JPY"))
	}
	var versions []int64
	cursor = ""
	for {
		page, next, err := s.ListEntries(ctx, acc, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			versions = append(versions, e.Version)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(versions) != "[5 4 3 2 1]" {
		t.Fatalf("statement versions %v, want newest first [5 4 3 2 1]", versions)
	}
}

// TestConcurrentOverlappingBatches runs several writers over shared hot
// accounts on both sides at once, with ids repeated across writers, and then
// checks the books from the database.
func TestConcurrentOverlappingBatches(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	const nAccounts, writers, batches = 12, 4, 25
	accounts := make([]uuid.UUID, nAccounts)
	var funding []transfer.Request
	for i := range accounts {
		accounts[i] = newAccount(t, s, "USD")
		funding = append(funding, deposit(accounts[i], "100", "USD"))
	}
	apply(t, s, funding...)

	// A shared pool of requests: every writer draws from it, so the same id
	// reaches the database from several transactions at once.
	rng := rand.New(rand.NewPCG(1, 2))
	var pool []transfer.Request
	for i := 0; i < 600; i++ {
		from := accounts[rng.IntN(3)] // hot debit side
		to := accounts[rng.IntN(nAccounts)]
		if i%2 == 0 {
			from, to = accounts[rng.IntN(nAccounts)], accounts[rng.IntN(3)] // hot credit side
		}
		amount := fmt.Sprintf("%d.%02d", rng.IntN(30), rng.IntN(100))
		switch i % 10 {
		case 0:
			pool = append(pool, deposit(to, amount, "USD"))
		case 1:
			pool = append(pool, transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: from, Amount: dec(amount), Currency: "USD"})
		default:
			pool = append(pool, move(from, to, amount, "USD"))
		}
	}

	var wg sync.WaitGroup
	var drawn sync.Map
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			for b := 0; b < batches; b++ {
				batch := make([]transfer.Request, 1+r.IntN(40))
				for i := range batch {
					batch[i] = pool[r.IntN(len(pool))]
					drawn.Store(batch[i].ID, true)
				}
				if _, err := s.ApplyBatch(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}(uint64(w))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer failed (a deadlock or lost update must never surface): %v", err)
	}
	checkBooks(t, s)
	// Every request drawn has exactly one decision stored.
	var ids []uuid.UUID
	drawn.Range(func(k, _ any) bool { ids = append(ids, k.(uuid.UUID)); return true })
	var decided int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM transfers WHERE id = ANY($1)`, ids).Scan(&decided); err != nil {
		t.Fatal(err)
	}
	if decided != len(ids) {
		t.Fatalf("%d decisions for %d distinct requests", decided, len(ids))
	}
}

// checkBooks verifies the ledger's invariants from the database alone.
func checkBooks(t *testing.T, s *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	db := s.Pool()
	checks := []struct{ what, query string }{
		// Per currency: sum of balances == money in - money out: deposits,
		// withdrawals, and reversals of them (which have no account on
		// the outside side). Transfers, posts and their reversals move
		// money between accounts; holds and voids move none.
		{"currencies whose balances differ from what came in and went out", `
			SELECT count(*) FROM (
				SELECT c.code,
					coalesce((SELECT sum(balance) FROM accounts WHERE currency = c.code), 0) AS total,
					coalesce((SELECT sum(CASE WHEN from_account IS NULL THEN amount WHEN to_account IS NULL THEN -amount ELSE 0 END)
						FROM transfers WHERE currency = c.code AND status = 'applied'
							AND kind IN ('deposit', 'withdrawal', 'reversal')), 0) AS net
				FROM currencies c) x
			WHERE total <> net`},
		// Entries: one per account an applied request moved money on; none
		// for rejections, holds and voids (a hold moves nothing until posted).
		{"requests with the wrong number of entries", `
			SELECT count(*) FROM transfers t
			WHERE (SELECT count(*) FROM entries e WHERE e.transfer_id = t.id) <>
				CASE WHEN t.status = 'rejected' OR t.kind IN ('hold', 'void') THEN 0
					ELSE (t.from_account IS NOT NULL)::int + (t.to_account IS NOT NULL)::int END`},
		// Running balances replay to each account's balance, versions have no gaps.
		{"entries that do not replay", `
			WITH replay AS (
				SELECT account_id, version, balance_after,
					sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END)
						OVER (PARTITION BY account_id ORDER BY version) AS running,
					row_number() OVER (PARTITION BY account_id ORDER BY version) AS n
				FROM entries)
			SELECT count(*) FROM replay r JOIN accounts a ON a.id = r.account_id
			WHERE r.running <> r.balance_after OR r.n <> r.version
				OR (r.version = a.version AND r.balance_after <> a.balance)`},
		{"accounts whose version is not their entry count",
			`SELECT count(*) FROM accounts a WHERE a.version <> (SELECT count(*) FROM entries e WHERE e.account_id = a.id)`},
		{"negative balances or available balances",
			`SELECT count(*) FROM accounts WHERE balance < 0 OR held < 0 OR balance - held < 0`},
		// available = balance - sum(held amounts): held is what the holds reserve.
		{"accounts whose held is not what their holds reserve", `
			SELECT count(*) FROM accounts a
			WHERE a.held <> coalesce((SELECT sum(amount) FROM holds h WHERE h.from_account = a.id AND h.state = 'held'), 0)`},
		// A hold row for each applied hold request and for nothing else.
		{"holds without their applied hold request, or the other way round", `
			SELECT count(*) FROM holds h FULL JOIN (SELECT * FROM transfers WHERE kind = 'hold' AND status = 'applied') t ON t.id = h.id
			WHERE h.id IS NULL OR t.id IS NULL OR h.amount <> t.amount OR h.from_account <> t.from_account
				OR h.to_account <> t.to_account OR h.currency <> t.currency`},
		// A hold is settled at most once, as its state says.
		{"holds settled otherwise than their state says", `
			SELECT count(*) FROM holds h
			LEFT JOIN LATERAL (SELECT count(*) AS n, min(kind) AS kind, min(amount) AS amount FROM transfers t
				WHERE t.hold_id = h.id AND t.status = 'applied') s ON true
			WHERE s.n > 1
				OR (h.state = 'posted' AND (s.n <> 1 OR s.kind <> 'post' OR s.amount <> h.posted_amount OR h.posted_amount > h.amount))
				OR (h.state = 'voided' AND (s.n <> 1 OR s.kind <> 'void'))
				OR (h.state IN ('held', 'expired') AND (s.n <> 0 OR h.posted_amount <> 0))`},
		// reversed_amount is the sum of the applied reversals, within the amount.
		{"requests whose reversed_amount is not their reversals' sum", `
			SELECT count(*) FROM transfers t
			WHERE t.reversed_amount <> coalesce((SELECT sum(amount) FROM transfers r
					WHERE r.reverses = t.id AND r.kind = 'reversal' AND r.status = 'applied'), 0)
				OR (t.reversed_amount > 0 AND (t.status <> 'applied' OR t.reversed_amount > t.amount
					OR t.kind NOT IN ('transfer', 'deposit', 'withdrawal', 'post')))`},
	}
	for _, c := range checks {
		var bad int
		if err := db.QueryRow(ctx, c.query).Scan(&bad); err != nil || bad != 0 {
			t.Fatalf("%s: %d (%v)", c.what, bad, err)
		}
	}
}

// TestPlansFollowTableGrowth: a statement first run while transfers was
// empty must still use the primary key once the table has grown, with no
// ANALYZE in between (autovacuum may be off, or not yet have run). A cached
// generic plan would keep scanning the whole table.
func TestPlansFollowTableGrowth(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`PREPARE decided(uuid[]) AS SELECT id FROM transfers WHERE id = ANY($1)`)
	for range 8 { // past the five custom plans after which a generic one may stick
		exec(`EXECUTE decided(ARRAY[gen_random_uuid(), gen_random_uuid()])`)
	}
	exec(`INSERT INTO transfers (id, kind, status, amount, currency, fingerprint, submitted_at, processed_at, to_account)
		SELECT gen_random_uuid(), 'deposit', 'applied', 1, 'USD', sha256(i::text::bytea), now(), now(), gen_random_uuid()
		FROM generate_series(1, 20000) AS i`)
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE decided(ARRAY[gen_random_uuid(), gen_random_uuid()])`)
	if err != nil {
		t.Fatal(err)
	}
	var plan string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan += line + "\n"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "transfers_pkey") {
		t.Fatalf("decided-ids lookup on 20,000 transfers does not use the primary key:\n%s", plan)
	}
}
