package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/transfer"
)

// TestCurrencyAddedAtRuntime: a batch naming a currency the cached table
// lacks reads the table again rather than rejecting the request, and the
// table it read is the one every other reader of the store then sees.
func TestCurrencyAddedAtRuntime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := dbtest.NewStore(t)
	cs, err := s.Currencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := cs["USD"]; !ok || p != 2 {
		t.Fatalf("USD: %d %v in %v", p, ok, cs)
	}
	if _, ok := cs["XTS"]; ok {
		t.Fatal("XTS is supported before it was added")
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO currencies (code, precision) VALUES ('XTS', 3)`); err != nil {
		t.Fatal(err)
	}
	a := newAccount(t, s, "XTS")
	out := apply(t, s, deposit(a, "1.0005", "xts"))
	if tr := out[0].Transfer; tr.Status != transfer.StatusApplied || !tr.Amount.Equal(dec("1.001")) {
		t.Fatalf("deposit: %+v", tr)
	}
	cs, err = s.Currencies(ctx)
	if err != nil || cs["XTS"] != 3 {
		t.Fatalf("after the batch: %v %v", cs, err)
	}
	// An unknown code is still unknown after a look.
	cs, err = s.Currencies(ctx, "ZZZ")
	if _, ok := cs["ZZZ"]; err != nil || ok {
		t.Fatalf("ZZZ: %v %v", cs, err)
	}
	if out := apply(t, s, deposit(uuid.New(), "1", "ZZZ")); out[0].Transfer.Reason != transfer.CodeCurrencyNotSupported {
		t.Fatalf("ZZZ deposit: %+v", out[0].Transfer)
	}
}
