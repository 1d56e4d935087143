package load

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// BookInput is what a run believes happened, to be checked against the
// database: its accounts, and every request it sent (funding included)
// with what it saw of it.
type BookInput struct {
	Accounts []uuid.UUID
	Requests []Observed
	// Global adds the whole-database checks: money conserved per currency
	// over every account, and no negative balance anywhere.
	Global bool
}

// checkChunk bounds the ids sent in one query.
const checkChunk = 5000

// storedTransfer is the part of a transfers row the checks read.
type storedTransfer struct {
	status   transfer.Status
	reason   string
	kind     transfer.Kind
	currency string
	amount   decimal.Decimal
	// hasFrom and hasTo say which accounts the request moved money
	// between: a reversal of a deposit has no receiver, of a withdrawal
	// no sender.
	hasFrom, hasTo bool
}

// flow is what an applied request brought into (positive) or took out of
// the wallet, and the entries it wrote. Holds and voids move nothing; a
// post moves between two accounts; a reversal of a deposit takes money
// out and of a withdrawal brings it back.
func (st storedTransfer) flow() (decimal.Decimal, int64) {
	switch {
	case st.kind == transfer.KindHold || st.kind == transfer.KindVoid:
		return decimal.Zero, 0
	case st.hasFrom && st.hasTo:
		return decimal.Zero, 2
	case st.hasTo:
		return st.amount, 1
	case st.hasFrom:
		return st.amount.Neg(), 1
	}
	return decimal.Zero, 0
}

// CheckBooks checks the books after a run. Every check is returned, passed
// or failed; the error is for a database that could not be read.
func CheckBooks(ctx context.Context, pool *pgxpool.Pool, in BookInput) ([]Check, error) {
	stored, err := readTransfers(ctx, pool, in.Requests)
	if err != nil {
		return nil, err
	}
	var checks []Check
	add := func(name string, problems []string, okDetail string) {
		c := Check{Name: name, OK: len(problems) == 0, Detail: okDetail}
		if !c.OK {
			c.Detail = summarizeProblems(problems)
		}
		checks = append(checks, c)
	}

	// Every accepted request has exactly one decision: an outcome read
	// from the results stream (repeats must agree) and one stored row.
	var missingOutcome, missingRow, mismatch []string
	var accepted, duplicates, lateRows int
	for _, o := range in.Requests {
		_, hasRow := stored[o.ID]
		if !o.Accepted {
			if hasRow {
				lateRows++ // accepted after all, though the client lost the answer
			}
			continue
		}
		accepted++
		if o.Outcomes == 0 {
			missingOutcome = append(missingOutcome, o.ID.String())
		}
		if o.Outcomes > 1 {
			duplicates++
		}
		if o.Mismatch {
			mismatch = append(mismatch, o.ID.String()+": outcome messages disagree")
		}
		if !hasRow {
			missingRow = append(missingRow, o.ID.String())
		}
	}
	add("every accepted request has an outcome", missingOutcome,
		fmt.Sprintf("%d accepted, %d outcomes repeated (identical)", accepted, duplicates))
	add("every accepted request is decided in the database", missingRow,
		fmt.Sprintf("%d rows; %d requests not acknowledged to the client were decided too", accepted-len(missingRow)+lateRows, lateRows))

	// What the stream said matches what the database holds.
	var applied int
	for _, o := range in.Requests {
		row, ok := stored[o.ID]
		if !ok || !o.Decided {
			continue
		}
		if o.Applied {
			applied++
		}
		wantStatus := transfer.StatusRejected
		if o.Applied {
			wantStatus = transfer.StatusApplied
		}
		if row.status != wantStatus || row.reason != o.Reason {
			mismatch = append(mismatch, fmt.Sprintf("%s: outcome %s %s, database %s %s", o.ID, wantStatus, o.Reason, row.status, row.reason))
		}
	}
	add("outcomes match the database", mismatch, "")
	var dbApplied int
	for _, row := range stored {
		if row.status == transfer.StatusApplied {
			dbApplied++
		}
	}
	var countProblem []string
	if dbApplied != applied {
		countProblem = append(countProblem, fmt.Sprintf("%d applied outcomes read, %d applied rows in the database", applied, dbApplied))
	}
	add("applied count matches the database", countProblem, fmt.Sprintf("%d applied", applied))

	// Requests built to fail must fail, for the right reason.
	var wronglyApplied []string
	for _, o := range in.Requests {
		if o.MustReject && o.Decided && (o.Applied || o.Reason != string(transfer.CodeInsufficientFunds)) {
			wronglyApplied = append(wronglyApplied, fmt.Sprintf("%s: applied=%v reason=%q", o.ID, o.Applied, o.Reason))
		}
	}
	add("requests beyond all funds are rejected with insufficient_funds", wronglyApplied, "")

	// Each account's entries replay to its balance and version, and the
	// run's money is what its deposits brought in minus its withdrawals.
	accounts, err := readAccounts(ctx, pool, in.Accounts)
	if err != nil {
		return nil, err
	}
	var replay, negative []string
	balances := map[string]decimal.Decimal{}
	var entries int64
	for _, a := range accounts {
		if !a.balance.Equal(a.net) || a.version != a.entries || a.version != a.maxVersion {
			replay = append(replay, fmt.Sprintf("%s: balance %s version %d, entries sum %s count %d last version %d",
				a.id, a.balance, a.version, a.net, a.entries, a.maxVersion))
		}
		if a.balance.IsNegative() {
			negative = append(negative, fmt.Sprintf("%s: %s", a.id, a.balance))
		}
		balances[a.currency] = balances[a.currency].Add(a.balance)
		entries += a.entries
	}
	if len(accounts) != len(in.Accounts) {
		replay = append(replay, fmt.Sprintf("%d of the run's %d accounts exist", len(accounts), len(in.Accounts)))
	}
	flows := map[string]decimal.Decimal{}
	var wantEntries int64
	for _, row := range stored {
		if row.status != transfer.StatusApplied {
			continue
		}
		flow, n := row.flow()
		flows[row.currency] = flows[row.currency].Add(flow)
		wantEntries += n
	}
	if entries != wantEntries {
		replay = append(replay, fmt.Sprintf("%d entries on the run's accounts, %d expected from its applied requests", entries, wantEntries))
	}
	add("entries replay to every balance", replay, fmt.Sprintf("%d accounts, %d entries", len(accounts), entries))
	add("money conserved per currency (run): balances = deposits - withdrawals", compareSums(balances, flows), describeSums(balances))
	add("no negative balance (run)", negative, "")

	if in.Global {
		gBalances, gFlows, gNegative, err := readGlobal(ctx, pool)
		if err != nil {
			return nil, err
		}
		add("money conserved per currency (database): balances = deposits - withdrawals", compareSums(gBalances, gFlows), describeSums(gBalances))
		var neg []string
		if gNegative > 0 {
			neg = append(neg, fmt.Sprintf("%d accounts below zero", gNegative))
		}
		add("no negative balance (database)", neg, "")
	}
	return checks, nil
}

func readTransfers(ctx context.Context, pool *pgxpool.Pool, reqs []Observed) (map[uuid.UUID]storedTransfer, error) {
	out := make(map[uuid.UUID]storedTransfer, len(reqs))
	for start := 0; start < len(reqs); start += checkChunk {
		end := min(start+checkChunk, len(reqs))
		ids := make([][16]byte, 0, end-start)
		for _, o := range reqs[start:end] {
			ids = append(ids, o.ID)
		}
		rows, err := pool.Query(ctx, `SELECT id, status, coalesce(reason, ''), kind, currency, amount::text,
			from_account IS NOT NULL, to_account IS NOT NULL FROM transfers WHERE id = ANY($1)`, ids)
		if err != nil {
			return nil, fmt.Errorf("read transfers: %w", err)
		}
		for rows.Next() {
			var id [16]byte
			var st storedTransfer
			var status, kind, amount string
			if err := rows.Scan(&id, &status, &st.reason, &kind, &st.currency, &amount, &st.hasFrom, &st.hasTo); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read transfers: %w", err)
			}
			st.status, st.kind = transfer.Status(status), transfer.Kind(kind)
			if st.amount, err = decimal.NewFromString(amount); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read transfers: amount %q: %w", amount, err)
			}
			out[id] = st
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read transfers: %w", err)
		}
	}
	return out, nil
}

type accountBook struct {
	id                           uuid.UUID
	currency                     string
	balance, net                 decimal.Decimal
	version, entries, maxVersion int64
}

func readAccounts(ctx context.Context, pool *pgxpool.Pool, ids []uuid.UUID) ([]accountBook, error) {
	var out []accountBook
	for start := 0; start < len(ids); start += checkChunk {
		end := min(start+checkChunk, len(ids))
		rows, err := pool.Query(ctx, `SELECT a.id, a.currency, a.balance::text, a.version,
				e.n, coalesce(e.maxv, 0), coalesce(e.net, 0)::text
			FROM accounts a CROSS JOIN LATERAL (
				SELECT count(*) AS n, max(version) AS maxv,
					sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) AS net
				FROM entries WHERE account_id = a.id) e
			WHERE a.id = ANY($1)`, binaryUUIDs(ids[start:end]))
		if err != nil {
			return nil, fmt.Errorf("read accounts: %w", err)
		}
		for rows.Next() {
			var a accountBook
			var id [16]byte
			var balance, net string
			if err := rows.Scan(&id, &a.currency, &balance, &a.version, &a.entries, &a.maxVersion, &net); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read accounts: %w", err)
			}
			a.id = id
			if a.balance, err = decimal.NewFromString(balance); err == nil {
				a.net, err = decimal.NewFromString(net)
			}
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read accounts: %w", err)
			}
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read accounts: %w", err)
		}
	}
	return out, nil
}

func readGlobal(ctx context.Context, pool *pgxpool.Pool) (balances, flows map[string]decimal.Decimal, negative int64, err error) {
	sums := func(sql string) (map[string]decimal.Decimal, error) {
		rows, err := pool.Query(ctx, sql)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]decimal.Decimal{}
		for rows.Next() {
			var cur, sum string
			if err := rows.Scan(&cur, &sum); err != nil {
				return nil, err
			}
			d, err := decimal.NewFromString(sum)
			if err != nil {
				return nil, err
			}
			out[cur] = d
		}
		return out, rows.Err()
	}
	if balances, err = sums(`SELECT currency, sum(balance)::text FROM accounts GROUP BY currency`); err != nil {
		return nil, nil, 0, fmt.Errorf("sum balances: %w", err)
	}
	// Money enters by deposits and reversed withdrawals (no sender) and
	// leaves by withdrawals and reversed deposits (no receiver).
	if flows, err = sums(`SELECT currency, sum(CASE WHEN from_account IS NULL THEN amount ELSE -amount END)::text
		FROM transfers WHERE status = 'applied' AND kind NOT IN ('hold', 'void')
		AND (from_account IS NULL) <> (to_account IS NULL) GROUP BY currency`); err != nil {
		return nil, nil, 0, fmt.Errorf("sum deposits and withdrawals: %w", err)
	}
	if err = pool.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE balance < 0`).Scan(&negative); err != nil {
		return nil, nil, 0, fmt.Errorf("count negative balances: %w", err)
	}
	return balances, flows, negative, nil
}

// compareSums lists the currencies whose balances differ from their flows.
func compareSums(balances, flows map[string]decimal.Decimal) []string {
	keys := map[string]bool{}
	for k := range balances {
		keys[k] = true
	}
	for k := range flows {
		keys[k] = true
	}
	var out []string
	for _, cur := range slices.Sorted(maps.Keys(keys)) {
		if b, f := balances[cur], flows[cur]; !b.Equal(f) {
			out = append(out, fmt.Sprintf("%s: balances %s, deposits - withdrawals %s (difference %s)", cur, b, f, b.Sub(f)))
		}
	}
	return out
}

func describeSums(m map[string]decimal.Decimal) string {
	var parts []string
	for _, cur := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, cur+" "+m[cur].String())
	}
	return strings.Join(parts, ", ")
}

// summarizeProblems keeps a failed check's detail readable: the count and
// the first few cases.
func summarizeProblems(p []string) string {
	const show = 5
	if len(p) <= show {
		return strings.Join(p, "; ")
	}
	return fmt.Sprintf("%d problems, first: %s", len(p), strings.Join(p[:show], "; "))
}

func binaryUUIDs(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
