package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/transfer"
)

func attempt(r transfer.Request) transfer.Request {
	r.Attempt = uuid.New()
	return r
}

// TestRetryAfterRejection: a 2020-API attempt decides a rejected id afresh,
// in a later batch or in the same one, and the row keeps the history.
func TestRetryAfterRejection(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	a, b, btc := newAccount(t, s, "USD"), newAccount(t, s, "USD"), newAccount(t, s, "BTC")
	apply(t, s, deposit(a, "1000", "USD"), deposit(b, "100", "USD"), deposit(btc, "1", "BTC"))

	wrong := attempt(move(a, btc, "1", "USD"))
	broke := attempt(wrong)
	broke.To, broke.Amount = b, dec("1001")
	good := attempt(broke)
	good.Amount = dec("100.111")

	if out := apply(t, s, wrong); out[0].Reason() != transfer.CodeReceiverAccountWrongCurrency {
		t.Fatalf("first attempt: %s", out[0].Reason())
	}
	if out := apply(t, s, wrong); !out[0].Replayed || out[0].Reason() != transfer.CodeReceiverAccountWrongCurrency {
		t.Fatalf("redelivered first attempt: replayed=%v %s", out[0].Replayed, out[0].Reason())
	}
	if out := apply(t, s, broke); out[0].Replayed || out[0].Reason() != transfer.CodeInsufficientFunds {
		t.Fatalf("second attempt: replayed=%v %s", out[0].Replayed, out[0].Reason())
	}
	out := apply(t, s, good, attempt(good))
	if out[0].Status() != transfer.StatusApplied || out[0].Replayed || !out[1].Replayed || out[1].Status() != transfer.StatusApplied {
		t.Fatalf("third attempt: %s replayed=%v; fourth %s replayed=%v", out[0].Status(), out[0].Replayed, out[1].Status(), out[1].Replayed)
	}
	if ga, gb := balance(t, s, a), balance(t, s, b); !ga.Equal(dec("899.89")) || !gb.Equal(dec("200.11")) {
		t.Fatalf("balances %s / %s, want 899.89 / 200.11", ga, gb)
	}
	stored, err := s.GetTransfer(ctx, good.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != transfer.StatusApplied || stored.Attempt != good.Attempt || stored.Decisions != 3 ||
		len(stored.Superseded) != 2 || stored.Superseded[0] != wrong.Attempt || stored.Superseded[1] != broke.Attempt ||
		stored.Fingerprint != good.Fingerprint() {
		t.Fatalf("stored %+v", stored)
	}

	// Rejected and decided again within one batch: inserted once, final.
	fresh := attempt(move(b, a, "500", "USD"))
	deposit50 := deposit(b, "400", "USD")
	again := attempt(fresh)
	out = apply(t, s, fresh, deposit50, again)
	if out[0].Reason() != transfer.CodeInsufficientFunds || out[2].Status() != transfer.StatusApplied {
		t.Fatalf("one batch: %s then %s", out[0].Reason(), out[2].Status())
	}
	if stored, err = s.GetTransfer(ctx, fresh.ID); err != nil || stored.Decisions != 2 || stored.Attempt != again.Attempt {
		t.Fatalf("one batch stored %+v, %v", stored, err)
	}

	// A v1 rejection is final for v1, and a 2020 attempt decides it again.
	v1 := move(a, b, "5000", "USD")
	apply(t, s, v1)
	if out := apply(t, s, v1); !out[0].Replayed || out[0].Reason() != transfer.CodeInsufficientFunds {
		t.Fatalf("v1 retry: replayed=%v %s", out[0].Replayed, out[0].Reason())
	}
	retry := attempt(v1)
	retry.Amount = dec("5")
	if out := apply(t, s, retry); out[0].Status() != transfer.StatusApplied {
		t.Fatalf("2020 retry of a v1 rejection: %s", out[0].Reason())
	}
	checkBooks(t, s)
}

// TestConcurrentRetriesApplyOnce: many 2020-API attempts of one rejected
// id, between different accounts (so no account lock orders them),
// race in concurrent batches: exactly one of them applies.
func TestConcurrentRetriesApplyOnce(t *testing.T) {
	t.Parallel()
	s := dbtest.NewStore(t)
	ctx := context.Background()
	const senders, rounds = 6, 15
	from, to := make([]uuid.UUID, senders), make([]uuid.UUID, senders)
	var funding []transfer.Request
	for i := range from {
		from[i], to[i] = newAccount(t, s, "USD"), newAccount(t, s, "USD")
		funding = append(funding, deposit(from[i], "1000", "USD"))
	}
	apply(t, s, funding...)

	for round := 0; round < rounds; round++ {
		rejected := move(from[0], to[0], "1000000", "USD") // insufficient funds
		if out := apply(t, s, rejected); out[0].Reason() != transfer.CodeInsufficientFunds {
			t.Fatalf("setup: %s", out[0].Reason())
		}
		var wg sync.WaitGroup
		outcomes := make([]transfer.Outcome, senders)
		errs := make([]error, senders)
		for i := range from {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := attempt(rejected)
				r.From, r.To, r.Amount = from[i], to[i], dec("1")
				out, err := s.ApplyBatch(ctx, []transfer.Request{r})
				if err == nil {
					outcomes[i] = out[0]
				}
				errs[i] = err
			}(i)
		}
		wg.Wait()
		applied := 0
		for i, o := range outcomes {
			if errs[i] != nil {
				t.Fatalf("round %d: attempt %d: %v", round, i, errs[i])
			}
			if o.Status() == transfer.StatusApplied && !o.Replayed {
				applied++
			}
		}
		if applied != 1 {
			t.Fatalf("round %d: %d attempts applied, want exactly 1", round, applied)
		}
		var entries int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM entries WHERE transfer_id = $1`, rejected.ID).Scan(&entries); err != nil || entries != 2 {
			t.Fatalf("round %d: %d entries (%v), want 2", round, entries, err)
		}
	}
	checkBooks(t, s)
}
