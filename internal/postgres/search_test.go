package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// searchIDs runs a search to its last page, limit rows a page, and returns
// the ids in the order they came.
func searchIDs(t *testing.T, s *postgres.Store, f transfer.Filter, limit int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the search does not end")
		}
		list, next, err := s.SearchTransfers(context.Background(), f, cursor, limit)
		if err != nil {
			t.Fatalf("search %+v: %v", f, err)
		}
		if len(list) > limit {
			t.Fatalf("page of %d rows for limit %d", len(list), limit)
		}
		for _, tr := range list {
			ids = append(ids, tr.ID)
		}
		if next == "" {
			return ids
		}
		cursor = next
	}
}

func setMetadata(t *testing.T, s *postgres.Store, id uuid.UUID, metadata, reference string) {
	t.Helper()
	var ref *string
	if reference != "" {
		ref = &reference
	}
	if _, err := s.Pool().Exec(context.Background(), `UPDATE transfers SET metadata = $2::jsonb, reference = $3 WHERE id = $1`,
		id, metadata, ref); err != nil {
		t.Fatal(err)
	}
}

func TestSearchTransfers(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")

	d1, d2 := deposit(a, "100", "USD"), deposit(b, "50", "USD")
	first := apply(t, s, d1, d2)
	t1, w1, big, self := move(a, b, "10", "USD"), withdrawal(b, "5", "USD"), move(a, b, "1000", "USD"), move(a, a, "1", "USD")
	second := apply(t, s, t1, w1, big, self)
	wantCodes(t, second, "", "", transfer.CodeInsufficientFunds, transfer.CodeAccountsMustBeDifferent)
	h1 := hold(a, b, "20", "USD", 0)
	third := apply(t, s, h1)
	setMetadata(t, s, t1.ID, `{"order_id": "o1", "shop": "x"}`, "ord-1")
	setMetadata(t, s, d1.ID, `{"shop": "x"}`, "")

	// Newest first: batch by batch, and by id within a batch, which
	// shares one decision time.
	byID := func(reqs ...transfer.Request) []uuid.UUID {
		ids := make([]uuid.UUID, len(reqs))
		for i, r := range reqs {
			ids[i] = r.ID
		}
		slices.SortFunc(ids, func(x, y uuid.UUID) int { return -slices.Compare(x[:], y[:]) })
		return ids
	}
	want := func(batches ...[]uuid.UUID) []uuid.UUID { return slices.Concat(batches...) }
	newest := func(ids []uuid.UUID, keep ...transfer.Request) []uuid.UUID {
		var out []uuid.UUID
		for _, id := range ids {
			if slices.ContainsFunc(keep, func(r transfer.Request) bool { return r.ID == id }) {
				out = append(out, id)
			}
		}
		return out
	}
	all := want(byID(h1), byID(t1, w1, big, self), byID(d1, d2))
	after1, at2 := first[0].Transfer.ProcessedAt, second[0].Transfer.ProcessedAt
	for _, tc := range []struct {
		name string
		f    transfer.Filter
		want []uuid.UUID
	}{
		{"all", transfer.Filter{}, all},
		{"account a", transfer.Filter{Account: a}, newest(all, d1, t1, big, self, h1)},
		{"account b", transfer.Filter{Account: b}, newest(all, d2, t1, w1, big, h1)},
		{"kind", transfer.Filter{Kind: transfer.KindTransfer}, newest(all, t1, big, self)},
		{"status", transfer.Filter{Status: transfer.StatusRejected}, newest(all, big, self)},
		{"account and status", transfer.Filter{Account: b, Status: transfer.StatusApplied}, newest(all, d2, t1, w1, h1)},
		{"reference", transfer.Filter{Reference: "ord-1"}, []uuid.UUID{t1.ID}},
		{"unknown reference", transfer.Filter{Reference: "ord-2"}, nil},
		{"metadata", transfer.Filter{Metadata: map[string]string{"shop": "x"}}, newest(all, t1, d1)},
		{"two pairs", transfer.Filter{Metadata: map[string]string{"shop": "x", "order_id": "o1"}}, []uuid.UUID{t1.ID}},
		{"metadata and account", transfer.Filter{Metadata: map[string]string{"shop": "x"}, Account: b}, []uuid.UUID{t1.ID}},
		{"created after", transfer.Filter{After: after1}, newest(all, t1, w1, big, self, h1)},
		{"created before", transfer.Filter{Before: at2}, newest(all, d1, d2, t1, w1, big, self)},
		{"window", transfer.Filter{After: after1, Before: at2}, newest(all, t1, w1, big, self)},
		{"window before the first", transfer.Filter{Before: after1.Add(-time.Microsecond)}, nil},
		{"everything", transfer.Filter{Account: a, Kind: transfer.KindTransfer, Status: transfer.StatusApplied,
			Reference: "ord-1", Metadata: map[string]string{"order_id": "o1"}, After: after1, Before: third[0].Transfer.ProcessedAt},
			[]uuid.UUID{t1.ID}},
	} {
		for _, limit := range []int{1, 2, 500} {
			if got := searchIDs(t, s, tc.f, limit); !slices.Equal(got, tc.want) {
				t.Errorf("%s, limit %d: got %v, want %v", tc.name, limit, got, tc.want)
			}
		}
	}

	if _, _, err := s.SearchTransfers(ctx, transfer.Filter{Kind: "payout"}, "", 10); !errors.Is(err, transfer.ErrBadFilter) {
		t.Errorf("unknown kind: %v, want ErrBadFilter", err)
	}
	if _, _, err := s.SearchTransfers(ctx, transfer.Filter{Status: "pending"}, "", 10); !errors.Is(err, transfer.ErrBadFilter) {
		t.Errorf("unknown status: %v, want ErrBadFilter", err)
	}
	if _, _, err := s.SearchTransfers(ctx, transfer.Filter{}, "not-a-cursor", 10); !errors.Is(err, transfer.ErrBadCursor) {
		t.Errorf("bad cursor: %v, want ErrBadCursor", err)
	}
}

func withdrawal(from uuid.UUID, amount, currency string) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: from, Amount: dec(amount), Currency: currency}
}

func TestBalanceAtAndEntriesWindow(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b := newAccount(t, s, "USD"), newAccount(t, s, "USD")

	apply(t, s, deposit(a, "100", "USD"))   // a v1: 100
	h := hold(a, b, "30", "USD", 0)         // reserves 30 of a's
	apply(t, s, h, move(a, b, "10", "USD")) // a v2: 90, available 60
	apply(t, s, post(h.ID, "25"))           // a v3: 65, the hold settled
	apply(t, s, deposit(a, "1", "USD"))     // a v4: 66
	entries, _, err := s.ListEntries(ctx, a, "", 10)
	if err != nil || len(entries) != 4 {
		t.Fatalf("entries: %d, %v", len(entries), err)
	}
	slices.Reverse(entries)
	at := func(v int) time.Time { return entries[v-1].CreatedAt }
	const us = time.Microsecond
	for _, tc := range []struct {
		name               string
		at                 time.Time
		balance, available string
		version            int64
	}{
		{"before the first entry", at(1).Add(-us), "0", "0", 0},
		{"at the first entry", at(1), "100", "100", 1},
		{"just before the hold", at(2).Add(-us), "100", "100", 1},
		{"with the hold", at(2), "90", "60", 2},
		{"just before the post", at(3).Add(-us), "90", "60", 2},
		{"at the post", at(3), "65", "65", 3},
		{"at the last entry", at(4), "66", "66", 4},
		{"in a year", at(4).Add(365 * 24 * time.Hour), "66", "66", 4},
	} {
		got, err := s.BalanceAt(ctx, a, tc.at)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !got.Balance.Equal(dec(tc.balance)) || !got.Available.Equal(dec(tc.available)) || got.Version != tc.version ||
			got.Currency != "USD" || got.AccountID != a || !got.At.Equal(tc.at) {
			t.Errorf("%s: got %+v, want balance %s available %s version %d", tc.name, got, tc.balance, tc.available, tc.version)
		}
	}
	now, err := s.BalanceAt(ctx, a, time.Time{})
	if err != nil || !now.Balance.Equal(dec("66")) || !now.Available.Equal(dec("66")) || now.Version != 4 || now.At.Before(at(4)) {
		t.Errorf("now: %+v, %v", now, err)
	}
	if _, err := s.BalanceAt(ctx, uuid.New(), at(1)); !errors.Is(err, transfer.ErrNotFound) {
		t.Errorf("unknown account: %v, want ErrNotFound", err)
	}
	if _, err := s.BalanceAt(ctx, uuid.New(), time.Time{}); !errors.Is(err, transfer.ErrNotFound) {
		t.Errorf("unknown account now: %v, want ErrNotFound", err)
	}

	versions := func(f transfer.EntryFilter, limit int) []int64 {
		t.Helper()
		var out []int64
		cursor := ""
		for {
			list, next, err := s.SearchEntries(ctx, a, f, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range list {
				out = append(out, e.Version)
			}
			if next == "" {
				return out
			}
			cursor = next
		}
	}
	for _, tc := range []struct {
		name string
		f    transfer.EntryFilter
		want []int64
	}{
		{"all", transfer.EntryFilter{}, []int64{4, 3, 2, 1}},
		{"after the first", transfer.EntryFilter{After: at(1)}, []int64{4, 3, 2}},
		{"after just before the first", transfer.EntryFilter{After: at(1).Add(-us)}, []int64{4, 3, 2, 1}},
		{"up to the third", transfer.EntryFilter{Before: at(3)}, []int64{3, 2, 1}},
		{"before the third", transfer.EntryFilter{Before: at(3).Add(-us)}, []int64{2, 1}},
		{"window", transfer.EntryFilter{After: at(1), Before: at(3)}, []int64{3, 2}},
		{"empty window", transfer.EntryFilter{After: at(4)}, nil},
	} {
		for _, limit := range []int{1, 3} {
			if got := versions(tc.f, limit); !slices.Equal(got, tc.want) {
				t.Errorf("entries %s, limit %d: got %v, want %v", tc.name, limit, got, tc.want)
			}
		}
	}
}

func TestAccountMetadata(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()

	id := uuid.New()
	created, ok, err := s.CreateAccountWithMetadata(ctx, id, "usd", map[string]string{"team": "ops", "cost-center": "7"})
	if err != nil || !ok || created.Metadata["team"] != "ops" || len(created.Metadata) != 2 {
		t.Fatalf("create: %+v, %v, %v", created, ok, err)
	}
	// A replay returns the account as it is; metadata changes by patch.
	again, ok, err := s.CreateAccountWithMetadata(ctx, id, "USD", map[string]string{"team": "other"})
	if err != nil || ok || again.Metadata["team"] != "ops" {
		t.Fatalf("replay: %+v, %v, %v", again, ok, err)
	}
	plain := newAccount(t, s, "USD")
	if a, err := s.GetAccount(ctx, plain); err != nil || a.Metadata == nil || len(a.Metadata) != 0 {
		t.Fatalf("account without metadata: %+v, %v", a, err)
	}
	var tagged []uuid.UUID
	for i := 0; i < 5; i++ {
		a, _, err := s.CreateAccountWithMetadata(ctx, uuid.New(), "USD", map[string]string{"team": "ops", "n": strconv.Itoa(i % 2)})
		if err != nil {
			t.Fatal(err)
		}
		tagged = append(tagged, a.ID)
	}

	search := func(m map[string]string, limit int) []uuid.UUID {
		t.Helper()
		var ids []uuid.UUID
		cursor := ""
		for {
			list, next, err := s.SearchAccounts(ctx, m, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range list {
				ids = append(ids, a.ID)
			}
			if next == "" {
				return ids
			}
			cursor = next
		}
	}
	if got := search(map[string]string{"team": "ops"}, 2); !slices.Equal(got, append([]uuid.UUID{id}, tagged...)) {
		t.Errorf("team=ops: got %v", got)
	}
	if got := search(map[string]string{"team": "ops", "n": "1"}, 1); !slices.Equal(got, []uuid.UUID{tagged[1], tagged[3]}) {
		t.Errorf("team=ops n=1: got %v", got)
	}
	if got := search(nil, 3); len(got) != 7 {
		t.Errorf("all accounts: %d, want 7", len(got))
	}

	str := func(s string) *string { return &s }
	patched, err := s.PatchAccountMetadata(ctx, id, map[string]*string{"team": nil, "region": str("eu"), "cost-center": str("8")})
	if err != nil {
		t.Fatal(err)
	}
	if len(patched.Metadata) != 2 || patched.Metadata["region"] != "eu" || patched.Metadata["cost-center"] != "8" {
		t.Errorf("patched: %v", patched.Metadata)
	}
	if !patched.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("a patch moved updated_at from %s to %s; it is the time of the last balance change", created.UpdatedAt, patched.UpdatedAt)
	}
	if got := search(map[string]string{"region": "eu"}, 10); !slices.Equal(got, []uuid.UUID{id}) {
		t.Errorf("region=eu after the patch: %v", got)
	}

	many := map[string]*string{}
	for i := 0; i < 15; i++ {
		many["k"+strconv.Itoa(i)] = str("v")
	}
	for name, patch := range map[string]map[string]*string{
		"bad key":     {"Team": str("x")},
		"over 16":     many,
		"long value":  {"note": str(string(make([]byte, 513)))},
		"bad key nil": {"": nil},
	} {
		_, err := s.PatchAccountMetadata(ctx, id, patch)
		var e *transfer.Error
		if !errors.As(err, &e) || e.Code != transfer.CodeInvalidMetadata {
			t.Errorf("%s: %v, want %s", name, err, transfer.CodeInvalidMetadata)
		}
	}
	if a, err := s.GetAccount(ctx, id); err != nil || len(a.Metadata) != 2 || a.Metadata["region"] != "eu" {
		t.Errorf("after refused patches: %v, %v", a.Metadata, err)
	}
	if _, err := s.PatchAccountMetadata(ctx, uuid.New(), map[string]*string{"a": str("b")}); !errors.Is(err, transfer.ErrNotFound) {
		t.Errorf("unknown account: %v, want ErrNotFound", err)
	}
}
