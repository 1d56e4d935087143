package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/transfer"
)

// A batch whose write the database refuses commits nothing (not even the
// requests before the refused one), is reported as refused, leaves no
// transaction open on a pooled connection, and the next batch applies.
func TestRefusedWriteCommitsNothing(t *testing.T) {
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a := newAccount(t, s, "USD")
	b := newAccount(t, s, "USD")
	apply(t, s, deposit(a, "100", "USD"))
	// A constraint the domain does not know: the insert of a transfer of
	// 50 or more fails with a check violation, after the locking reads.
	if _, err := s.Pool().Exec(ctx, `ALTER TABLE transfers ADD CONSTRAINT test_small CHECK (amount < 50) NOT VALID`); err != nil {
		t.Fatal(err)
	}

	refused := []transfer.Request{move(a, b, "10", "USD"), move(a, b, "60", "USD")}
	if _, err := s.ApplyBatch(ctx, refused); !errors.Is(err, transfer.ErrRefused) {
		t.Fatalf("ApplyBatch = %v, want ErrRefused", err)
	}
	if got := balance(t, s, a); !got.Equal(dec("100")) {
		t.Fatalf("sender's balance %s after a refused batch, want 100", got)
	}
	for _, r := range refused {
		if _, err := s.GetTransfer(ctx, r.ID); !errors.Is(err, transfer.ErrNotFound) {
			t.Fatalf("transfer %s of a refused batch: err %v, want not found", r.ID, err)
		}
	}
	var open int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Fatalf("%d connections left idle in a transaction", open)
	}

	out := apply(t, s, move(a, b, "10", "USD"))
	if out[0].Status() != transfer.StatusApplied {
		t.Fatalf("batch after the refused one: %+v", out[0])
	}
	if got := balance(t, s, b); !got.Equal(dec("10")) {
		t.Fatalf("receiver's balance %s, want 10", got)
	}
}
