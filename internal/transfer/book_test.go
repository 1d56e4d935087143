package transfer

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

var precisions = map[string]int32{"USD": 2, "EUR": 2, "BTC": 8, "JPY": 0, "KWD": 3, "ETH": 18}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func newBook(accounts ...*Account) *Book {
	b := &Book{Precisions: precisions, Accounts: map[uuid.UUID]*Account{}, Decided: map[uuid.UUID]Transfer{}}
	for _, a := range accounts {
		b.Accounts[a.ID] = a
	}
	return b
}

func TestApplyOriginalScenario(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("1000")}
	b := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("100")}
	btc := &Account{ID: uuid.New(), Currency: "BTC", Balance: dec("1")}
	book := newBook(a, b, btc)
	id := uuid.New()
	tr := Request{ID: id, Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("100.111"), Currency: "usd"}
	reqs := []Request{
		tr,
		tr, // retry inside the batch: a replay
		{ID: uuid.New(), Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("1001"), Currency: "USD"},
		{ID: uuid.New(), Kind: KindTransfer, From: a.ID, To: btc.ID, Amount: dec("1"), Currency: "USD"},
		{ID: id, Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("5"), Currency: "USD"},
	}
	out, ch := book.Apply(reqs, time.Now())
	if !a.Balance.Equal(dec("899.89")) || !b.Balance.Equal(dec("200.11")) {
		t.Fatalf("balances %s / %s, want 899.89 / 200.11", a.Balance, b.Balance)
	}
	want := []struct {
		status   Status
		reason   Code
		replayed bool
	}{
		{StatusApplied, "", false},
		{StatusApplied, "", true},
		{StatusRejected, CodeInsufficientFunds, false},
		{StatusRejected, CodeReceiverAccountWrongCurrency, false},
		{StatusRejected, CodeTransferIDConflict, true},
	}
	for i, w := range want {
		if out[i].Status() != w.status || out[i].Reason() != w.reason || out[i].Replayed != w.replayed {
			t.Errorf("outcome %d = %s/%s replayed=%v, want %s/%s replayed=%v",
				i, out[i].Status(), out[i].Reason(), out[i].Replayed, w.status, w.reason, w.replayed)
		}
	}
	if len(ch.Transfers) != 3 || len(ch.Entries) != 2 || len(ch.Accounts) != 2 {
		t.Fatalf("changes: %d transfers, %d entries, %d accounts; want 3, 2, 2",
			len(ch.Transfers), len(ch.Entries), len(ch.Accounts))
	}
	if !out[0].Transfer.Amount.Equal(dec("100.11")) || out[0].Transfer.Currency != "USD" {
		t.Errorf("stored amount %s %s, want 100.11 USD", out[0].Transfer.Amount, out[0].Transfer.Currency)
	}
	if out[4].Transfer.Amount.Equal(dec("5")) {
		t.Error("a conflicting request overwrote the stored transfer")
	}
}

func TestApplyRejectionCodes(t *testing.T) {
	t.Parallel()
	usd := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("10")}
	usd2 := &Account{ID: uuid.New(), Currency: "USD"}
	eur := &Account{ID: uuid.New(), Currency: "EUR", Balance: dec("10")}
	missing := uuid.New()
	cases := []struct {
		req  Request
		want Code
	}{
		{Request{Kind: KindTransfer, From: usd.ID, To: usd2.ID, Amount: dec("1"), Currency: "USD"}, CodeTransferIDIsEmpty},
		{Request{ID: uuid.New(), Kind: KindTransfer, To: usd2.ID, Amount: dec("1"), Currency: "USD"}, CodeSenderAccountIDIsEmpty},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, Amount: dec("1"), Currency: "USD"}, CodeReceiverAccountIDIsEmpty},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: usd.ID, Amount: dec("1"), Currency: "USD"}, CodeAccountsMustBeDifferent},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: usd2.ID, Amount: dec("-1"), Currency: "USD"}, CodeTransferAmountMustBePositive},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: usd2.ID, Amount: dec("0.004"), Currency: "USD"}, CodeTransferAmountMustBePositive},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: usd2.ID, Amount: dec("1"), Currency: "XYZ"}, CodeCurrencyNotSupported},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: usd2.ID, Amount: dec("1"), Currency: "U$D"}, CodeCurrencyNotSupported},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: usd2.ID, Amount: dec("10.01"), Currency: "USD"}, CodeInsufficientFunds},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: missing, To: usd2.ID, Amount: dec("1"), Currency: "USD"}, CodeSenderAccountNotExist},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: missing, Amount: dec("1"), Currency: "USD"}, CodeReceiverAccountNotExist},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: eur.ID, To: usd2.ID, Amount: dec("1"), Currency: "USD"}, CodeSenderAccountWrongCurrency},
		{Request{ID: uuid.New(), Kind: KindTransfer, From: usd.ID, To: eur.ID, Amount: dec("1"), Currency: "USD"}, CodeReceiverAccountWrongCurrency},
		{Request{ID: uuid.New(), Kind: KindDeposit, Amount: dec("1"), Currency: "USD"}, CodeAccountIDIsEmpty},
		{Request{ID: uuid.New(), Kind: KindDeposit, To: missing, Amount: dec("1"), Currency: "USD"}, CodeAccountNotExist},
		{Request{ID: uuid.New(), Kind: KindDeposit, To: eur.ID, Amount: dec("1"), Currency: "USD"}, CodeAccountWrongCurrency},
		{Request{ID: uuid.New(), Kind: KindWithdrawal, From: usd.ID, Amount: dec("11"), Currency: "USD"}, CodeInsufficientFunds},
		{Request{ID: uuid.New(), Kind: KindWithdrawal, From: missing, Amount: dec("1"), Currency: "USD"}, CodeAccountNotExist},
		{Request{ID: uuid.New(), Kind: KindWithdrawal, From: eur.ID, Amount: dec("1"), Currency: "USD"}, CodeAccountWrongCurrency},
		{Request{ID: uuid.New(), Kind: "refund", From: usd.ID, Amount: dec("1"), Currency: "USD"}, CodeInvalidKind},
	}
	for _, c := range cases {
		book := newBook(usd, usd2, eur)
		out, ch := book.Apply([]Request{c.req}, time.Now())
		if out[0].Status() != StatusRejected || out[0].Reason() != c.want {
			t.Errorf("%+v: got %s/%s, want rejected/%s", c.req, out[0].Status(), out[0].Reason(), c.want)
		}
		if len(ch.Entries) != 0 || len(ch.Accounts) != 0 {
			t.Errorf("%+v: a rejection changed balances", c.req)
		}
	}
	if !usd.Balance.Equal(dec("10")) || !eur.Balance.Equal(dec("10")) {
		t.Fatal("rejections moved money")
	}
}

func TestApplyOrderMatters(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "JPY"}
	b := &Account{ID: uuid.New(), Currency: "JPY"}
	book := newBook(a, b)
	reqs := []Request{
		{ID: uuid.New(), Kind: KindDeposit, To: a.ID, Amount: dec("60"), Currency: "JPY"},
		{ID: uuid.New(), Kind: KindDeposit, To: a.ID, Amount: dec("40.4"), Currency: "JPY"},
		{ID: uuid.New(), Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("100"), Currency: "JPY"},
	}
	out, _ := book.Apply(reqs, time.Now())
	for i, o := range out {
		if o.Status() != StatusApplied {
			t.Fatalf("request %d: %s/%s, want applied", i, o.Status(), o.Reason())
		}
	}
	if !a.Balance.IsZero() || !b.Balance.Equal(dec("100")) || a.Version != 3 || b.Version != 1 {
		t.Fatalf("balances %s v%d / %s v%d", a.Balance, a.Version, b.Balance, b.Version)
	}
}

// genBatch draws a batch over a few accounts in two currencies, reusing ids
// now and then so replays and conflicts occur.
func genBatch(t *rapid.T, accounts []*Account) []Request {
	var ids []uuid.UUID
	n := rapid.IntRange(1, 60).Draw(t, "n")
	reqs := make([]Request, 0, n)
	for i := 0; i < n; i++ {
		if len(reqs) > 0 && rapid.IntRange(0, 9).Draw(t, "reuse") == 0 {
			prev := reqs[rapid.IntRange(0, len(reqs)-1).Draw(t, "which")]
			if rapid.Bool().Draw(t, "same") {
				reqs = append(reqs, prev)
			} else {
				prev.Amount = prev.Amount.Add(dec("1"))
				reqs = append(reqs, prev)
			}
			continue
		}
		id := uuid.New()
		ids = append(ids, id)
		from := accounts[rapid.IntRange(0, len(accounts)-1).Draw(t, "from")]
		to := accounts[rapid.IntRange(0, len(accounts)-1).Draw(t, "to")]
		cur := from.Currency
		if rapid.IntRange(0, 19).Draw(t, "othercur") == 0 {
			cur = to.Currency
		}
		amount := decimal.New(rapid.Int64Range(-5, 50_000).Draw(t, "cents"), -3) // often needs rounding
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			reqs = append(reqs, Request{ID: id, Kind: KindDeposit, To: to.ID, Amount: amount, Currency: to.Currency})
		case 1:
			reqs = append(reqs, Request{ID: id, Kind: KindWithdrawal, From: from.ID, Amount: amount, Currency: cur})
		default:
			reqs = append(reqs, Request{ID: id, Kind: KindTransfer, From: from.ID, To: to.ID, Amount: amount, Currency: cur})
		}
	}
	return reqs
}

func TestApplyProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		var accounts []*Account
		for i := 0; i < rapid.IntRange(2, 6).Draw(t, "accounts"); i++ {
			cur := []string{"USD", "BTC"}[i%2]
			accounts = append(accounts, &Account{ID: uuid.New(), Currency: cur, Balance: decimal.New(rapid.Int64Range(0, 20_000).Draw(t, "start"), -2)})
		}
		initial := map[string]decimal.Decimal{}
		start := map[uuid.UUID]decimal.Decimal{}
		for _, a := range accounts {
			initial[a.Currency] = initial[a.Currency].Add(a.Balance)
			start[a.ID] = a.Balance
		}
		book := newBook(accounts...)
		reqs := genBatch(t, accounts)
		out, ch := book.Apply(reqs, time.Now())

		if len(out) != len(reqs) {
			t.Fatalf("%d outcomes for %d requests", len(out), len(reqs))
		}
		// Money is conserved per currency: balances = initial + deposits - withdrawals.
		expect := map[string]decimal.Decimal{}
		for k, v := range initial {
			expect[k] = v
		}
		applied := 0
		for _, tr := range ch.Transfers {
			if tr.Status != StatusApplied {
				continue
			}
			applied++
			switch tr.Kind {
			case KindDeposit:
				expect[tr.Currency] = expect[tr.Currency].Add(tr.Amount)
			case KindWithdrawal:
				expect[tr.Currency] = expect[tr.Currency].Sub(tr.Amount)
			}
		}
		got := map[string]decimal.Decimal{}
		for _, a := range accounts {
			if a.Balance.IsNegative() {
				t.Fatalf("account %s went negative: %s", a.ID, a.Balance)
			}
			got[a.Currency] = got[a.Currency].Add(a.Balance)
		}
		for cur, want := range expect {
			if !got[cur].Equal(want) {
				t.Fatalf("%s: balances sum to %s, want %s", cur, got[cur], want)
			}
		}
		// Each applied transfer has one entry per account it touches, and
		// the running balances replay to each account's balance.
		entriesPer := map[uuid.UUID]int{}
		running := map[uuid.UUID]decimal.Decimal{}
		for k, v := range start {
			running[k] = v
		}
		for _, e := range ch.Entries {
			entriesPer[e.TransferID]++
			if e.Direction == DirectionDebit {
				running[e.AccountID] = running[e.AccountID].Sub(e.Amount)
			} else {
				running[e.AccountID] = running[e.AccountID].Add(e.Amount)
			}
			if !running[e.AccountID].Equal(e.BalanceAfter) {
				t.Fatalf("entry %s v%d: balance_after %s, replay gives %s", e.AccountID, e.Version, e.BalanceAfter, running[e.AccountID])
			}
		}
		for _, tr := range ch.Transfers {
			want := 0
			if tr.Status == StatusApplied {
				want = 1
				if tr.Kind == KindTransfer {
					want = 2
				}
			}
			if entriesPer[tr.ID] != want {
				t.Fatalf("transfer %s (%s %s) has %d entries, want %d", tr.ID, tr.Kind, tr.Status, entriesPer[tr.ID], want)
			}
		}
		// Applying the same batch again changes nothing.
		balances := map[uuid.UUID]decimal.Decimal{}
		for _, a := range accounts {
			balances[a.ID] = a.Balance
		}
		again, ch2 := book.Apply(reqs, time.Now())
		if len(ch2.Transfers)+len(ch2.Entries)+len(ch2.Accounts) != 0 {
			t.Fatalf("second application wrote %d transfers, %d entries", len(ch2.Transfers), len(ch2.Entries))
		}
		for i := range again {
			if out[i].Transfer.ID != uuid.Nil && (!again[i].Replayed || again[i].Status() != out[i].Status() && !out[i].Conflict) {
				t.Fatalf("request %d: second application gave %s replayed=%v, first %s", i, again[i].Status(), again[i].Replayed, out[i].Status())
			}
		}
		for _, a := range accounts {
			if !a.Balance.Equal(balances[a.ID]) {
				t.Fatalf("second application moved %s: %s -> %s", a.ID, balances[a.ID], a.Balance)
			}
		}
	})
}
