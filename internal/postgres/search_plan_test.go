package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// Sizes of the ledger the plan test loads: large enough that the planner
// would read a table whole if no index served a query.
const (
	planAccounts  = 20_000
	planTransfers = 120_000
	// planEntries entries over the first planEntryAccounts accounts, one a
	// second, and planHolds holds, one every 5 seconds.
	planEntries       = 50_000
	planHolds         = 10_000
	planEntryAccounts = 500
)

// loadPlanLedger fills a database with planAccounts accounts (one in 20 with
// metadata) and planTransfers decided requests of every kind, one a second
// from 2026-01-01: one in 50 rejected, one in 3 with metadata, one in 4 with
// a reference.
func loadPlanLedger(t *testing.T, s *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO accounts (id, currency, metadata, created_at)
			SELECT md5('a' || g)::uuid, 'USD',
				CASE WHEN g %% 20 = 0 THEN jsonb_build_object('team', 't' || g %% 7, 'region', 'r' || g %% 3) ELSE '{}' END,
				timestamptz '2025-01-01' + g * interval '1 second'
			FROM generate_series(1, %d) g`, planAccounts),
		fmt.Sprintf(`INSERT INTO transfers (id, kind, status, reason, from_account, to_account, amount, currency,
				fingerprint, submitted_at, processed_at, metadata, reference)
			SELECT md5('t' || g)::uuid, k.kind,
				CASE WHEN g %% 50 = 0 THEN 'rejected' ELSE 'applied' END,
				CASE WHEN g %% 50 = 0 THEN 'insufficient_funds' END,
				CASE WHEN k.kind <> 'deposit' THEN md5('a' || (g %% %[2]d + 1))::uuid END,
				CASE WHEN k.kind <> 'withdrawal' THEN md5('a' || ((g * 7) %% %[2]d + 1))::uuid END,
				1, 'USD', sha256(g::text::bytea), k.at - interval '1 millisecond', k.at,
				CASE WHEN g %% 3 = 0 THEN jsonb_build_object('order_id', 'o' || g, 'shop', 's' || g %% 100) END,
				CASE WHEN g %% 4 = 0 THEN 'ref-' || g END
			FROM generate_series(1, %[1]d) g
			CROSS JOIN LATERAL (SELECT
				(ARRAY['transfer', 'transfer', 'transfer', 'deposit', 'withdrawal', 'hold', 'post', 'void', 'reversal'])[g %% 9 + 1] AS kind,
				timestamptz '2026-01-01' + g * interval '1 second' AS at) k`, planTransfers, planAccounts),
		fmt.Sprintf(`INSERT INTO entries (account_id, version, transfer_id, kind, direction, amount, balance_after, currency, created_at)
			SELECT md5('a' || (g %% %[2]d + 1))::uuid, g / %[2]d + 1, md5('t' || g)::uuid, 'deposit', 'credit', 1, g / %[2]d + 1,
				'USD', timestamptz '2026-01-01' + g * interval '1 second'
			FROM generate_series(0, %[1]d - 1) g`, planEntries, planEntryAccounts),
		fmt.Sprintf(`UPDATE accounts SET version = %[1]d / %[2]d, balance = %[1]d / %[2]d
			WHERE id IN (SELECT md5('a' || g)::uuid FROM generate_series(1, %[2]d) g)`, planEntries, planEntryAccounts),
		fmt.Sprintf(`INSERT INTO holds (id, from_account, to_account, amount, currency, state, created_at, updated_at)
			SELECT md5('h' || g)::uuid, md5('a' || (g %% %[2]d + 1))::uuid, md5('a' || (g %% %[2]d + 2))::uuid, 1, 'USD',
				CASE WHEN (g / %[2]d) %% 2 = 0 THEN 'held' ELSE 'voided' END,
				timestamptz '2026-01-01' + g * interval '5 seconds', timestamptz '2026-01-01' + (g * 5 + 60) * interval '1 second'
			FROM generate_series(0, %[1]d - 1) g`, planHolds, planEntryAccounts),
		`ANALYZE accounts`,
		`ANALYZE transfers`,
		`ANALYZE entries`,
		`ANALYZE holds`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err != nil {
			t.Fatalf("load: %v", err)
		}
	}
}

// seqScans lists the relations a JSON plan reads with a sequential scan.
func seqScans(t *testing.T, s *postgres.Store, query string, args []any) []string {
	t.Helper()
	var raw []byte
	if err := s.Pool().QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&raw); err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil {
		t.Fatalf("plan: %v", err)
	}
	var out []string
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.NodeType == "Seq Scan" {
			out = append(out, n.Relation)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	for _, p := range plans {
		walk(p.Plan)
	}
	return out
}

type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Plans    []planNode `json:"Plans"`
}

// TestSearchPlansUseIndexes plans every combination of the search filters
// the API allows over a ledger of planTransfers requests and fails if any
// plan reads transfers (or, for the account search, accounts) whole.
func TestSearchPlansUseIndexes(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	loadPlanLedger(t, s)

	var account uuid.UUID
	if err := s.Pool().QueryRow(context.Background(), `SELECT md5('a1')::uuid`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	after := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	before := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	cursor := ""
	{
		// A real cursor, from the middle of the ledger.
		list, next, err := s.SearchTransfers(context.Background(), transfer.Filter{Before: before}, "", 1)
		if err != nil || len(list) != 1 || next == "" {
			t.Fatalf("cursor: %v, %d rows, next %q", err, len(list), next)
		}
		cursor = next
	}
	// Each bit of a combination turns one filter on; kind and status take
	// a common and a rare value in turn.
	const filters = 8
	for combo := 0; combo < 1<<filters; combo++ {
		var f transfer.Filter
		var names []string
		c := ""
		on := func(bit int, name string) bool {
			if combo&(1<<bit) == 0 {
				return false
			}
			names = append(names, name)
			return true
		}
		if on(0, "account") {
			f.Account = account
		}
		if on(1, "kind") {
			f.Kind = []transfer.Kind{transfer.KindTransfer, transfer.KindVoid}[combo%2]
		}
		if on(2, "status") {
			f.Status = []transfer.Status{transfer.StatusApplied, transfer.StatusRejected}[combo/2%2]
		}
		if on(3, "reference") {
			f.Reference = "ref-40000"
		}
		if on(4, "metadata") {
			f.Metadata = map[string]string{"shop": "s7"}
			if combo%3 == 0 {
				f.Metadata["order_id"] = "o40707"
			}
		}
		if on(5, "created_after") {
			f.After = after
		}
		if on(6, "created_before") {
			f.Before = before
		}
		if on(7, "cursor") {
			c = cursor
		}
		query, args, err := postgres.SearchTransfersQuery(f, c, 50)
		if err != nil {
			t.Fatal(err)
		}
		if scans := seqScans(t, s, query, args); len(scans) > 0 {
			t.Errorf("filters [%s]: the plan scans %s sequentially", strings.Join(names, " "), strings.Join(scans, ", "))
		}
	}

	for _, tc := range []struct {
		name     string
		metadata map[string]string
		cursor   string
	}{
		{"all", nil, ""},
		{"metadata", map[string]string{"team": "t3"}, ""},
		{"two pairs", map[string]string{"team": "t3", "region": "r1"}, ""},
	} {
		query, args, err := postgres.SearchAccountsQuery(tc.metadata, tc.cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		if scans := seqScans(t, s, query, args); len(scans) > 0 {
			t.Errorf("accounts by %s: the plan scans %s sequentially", tc.name, strings.Join(scans, ", "))
		}
	}

	// A statement's window and a balance at an instant, over an account
	// with planEntries/planEntryAccounts entries and as many holds.
	mid := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	late := time.Date(2026, 1, 1, 20, 0, 0, 0, time.UTC)
	// Account 1's versions at 12:00 and at 20:00, past its last entry (see
	// below).
	const midVersion, lateVersion = 87, planEntries / planEntryAccounts
	for _, tc := range []struct {
		name   string
		f      transfer.EntryFilter
		cursor string
	}{
		{"all", transfer.EntryFilter{}, ""},
		{"after", transfer.EntryFilter{After: mid}, ""},
		{"before", transfer.EntryFilter{Before: late}, "50"},
		{"window", transfer.EntryFilter{After: mid, Before: late}, ""},
	} {
		query, args, err := postgres.SearchEntriesQuery(account, tc.f, midVersion, lateVersion, tc.cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		if scans := seqScans(t, s, query, args); len(scans) > 0 {
			t.Errorf("entries %s: the plan scans %s sequentially", tc.name, strings.Join(scans, ", "))
		}
	}
	if scans := seqScans(t, s, postgres.BalanceAtQuery, []any{account, mid}); len(scans) > 0 {
		t.Errorf("balance at an instant: the plan scans %s sequentially", strings.Join(scans, ", "))
	}
	// The same question answered by the store, against the loaded rows.
	// Entry g (from 0) is account g%500+1's, created g seconds into 2026,
	// with version and balance g/500+1: at 12:00 (g = 43200) account 1's
	// last is g = 43000, version 87. Hold g is account g%500+1's, created
	// 5g seconds into 2026, held when g/500 is even and else voided a
	// minute later: account 1's holds up to 12:00 are g = 0, 500, ...,
	// 8500, and the 9 of them with g/500 even were still held.
	b, err := s.BalanceAt(context.Background(), account, mid)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != 87 || !b.Balance.Equal(dec("87")) || !b.Available.Equal(dec("78")) {
		t.Errorf("balance at %s: %+v, want version 87, balance 87, available 78", mid, b)
	}
}
