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
// now and then so replays, conflicts and positive-idempotent retries occur.
func genBatch(t *rapid.T, accounts []*Account) []Request {
	n := rapid.IntRange(1, 60).Draw(t, "n")
	reqs := make([]Request, 0, n)
	for i := 0; i < n; i++ {
		if len(reqs) > 0 && rapid.IntRange(0, 5).Draw(t, "reuse") == 0 {
			prev := reqs[rapid.IntRange(0, len(reqs)-1).Draw(t, "which")]
			switch rapid.IntRange(0, 3).Draw(t, "how") {
			case 0: // a redelivery
			case 1: // the id reused with other fields
				prev.Amount = prev.Amount.Add(dec("1"))
			case 2: // a new attempt, as the 2020 API sends, with other fields
				prev.Attempt = uuid.New()
				prev.Amount = decimal.New(rapid.Int64Range(1, 50_000).Draw(t, "retry"), -3)
			case 3: // a new attempt with the same fields
				prev.Attempt = uuid.New()
			}
			reqs = append(reqs, prev)
			continue
		}
		id := uuid.New()
		from := accounts[rapid.IntRange(0, len(accounts)-1).Draw(t, "from")]
		to := accounts[rapid.IntRange(0, len(accounts)-1).Draw(t, "to")]
		cur := from.Currency
		if rapid.IntRange(0, 19).Draw(t, "othercur") == 0 {
			cur = to.Currency
		}
		amount := decimal.New(rapid.Int64Range(-5, 50_000).Draw(t, "cents"), -3) // often needs rounding
		var r Request
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			r = Request{ID: id, Kind: KindDeposit, To: to.ID, Amount: amount, Currency: to.Currency}
		case 1:
			r = Request{ID: id, Kind: KindWithdrawal, From: from.ID, Amount: amount, Currency: cur}
		default:
			r = Request{ID: id, Kind: KindTransfer, From: from.ID, To: to.ID, Amount: amount, Currency: cur}
		}
		if rapid.Bool().Draw(t, "positive") {
			r.Attempt = uuid.New()
		}
		reqs = append(reqs, r)
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
		// An id is applied at most once, and once applied it stays applied
		// whatever attempts follow; only a new attempt after a rejection is
		// decided again.
		appliedIDs := map[uuid.UUID]bool{}
		for i, o := range out {
			id := reqs[i].ID
			if appliedIDs[id] && (o.Status() == StatusApplied) == o.Conflict {
				t.Fatalf("request %d: id %s applied before, now %s conflict=%v", i, id, o.Status(), o.Conflict)
			}
			if !o.Replayed && o.Transfer.Status == StatusApplied {
				if appliedIDs[id] {
					t.Fatalf("request %d: id %s applied twice", i, id)
				}
				appliedIDs[id] = true
			}
			if !o.Replayed && o.Transfer.Decisions > 1 && reqs[i].Attempt == uuid.Nil {
				t.Fatalf("request %d: decided again without an attempt", i)
			}
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
			if out[i].Transfer.ID != uuid.Nil && !again[i].Replayed {
				t.Fatalf("request %d: second application decided it again: %s, first %s", i, again[i].Status(), out[i].Status())
			}
		}
		for _, a := range accounts {
			if !a.Balance.Equal(balances[a.ID]) {
				t.Fatalf("second application moved %s: %s -> %s", a.ID, balances[a.ID], a.Balance)
			}
		}
	})
}

// TestApplyPositiveIdempotency plays the 2020 service's retry rules: a
// rejected id is decided afresh by a new attempt, with the attempt's own
// fields; a redelivered attempt replays; an applied id stays applied.
func TestApplyPositiveIdempotency(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("1000")}
	b := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("100")}
	btc := &Account{ID: uuid.New(), Currency: "BTC", Balance: dec("1")}
	book := newBook(a, b, btc)
	id := uuid.New()
	attempt := func(to uuid.UUID, amount string) Request {
		return Request{ID: id, Kind: KindTransfer, From: a.ID, To: to, Amount: dec(amount), Currency: "USD", Attempt: uuid.New()}
	}
	first, second, third := attempt(btc.ID, "1"), attempt(b.ID, "1001"), attempt(b.ID, "100.111")
	check := func(r Request, status Status, reason Code, replayed bool) Outcome {
		t.Helper()
		out, _ := book.Apply([]Request{r}, time.Now())
		o := out[0]
		if o.Status() != status || o.Reason() != reason || o.Replayed != replayed {
			t.Fatalf("got %s/%s replayed=%v, want %s/%s replayed=%v", o.Status(), o.Reason(), o.Replayed, status, reason, replayed)
		}
		return o
	}
	check(first, StatusRejected, CodeReceiverAccountWrongCurrency, false)
	check(first, StatusRejected, CodeReceiverAccountWrongCurrency, true) // redelivered
	check(second, StatusRejected, CodeInsufficientFunds, false)
	check(first, StatusRejected, CodeTransferIDConflict, true) // an older attempt redelivered: not decided again
	o := check(third, StatusApplied, "", false)
	if o.Transfer.Decisions != 3 || len(o.Transfer.Superseded) != 2 || o.Transfer.Superseded[0] != first.Attempt ||
		o.Transfer.Superseded[1] != second.Attempt || o.Transfer.Attempt != third.Attempt {
		t.Fatalf("decision history: %d decisions, superseded %v, attempt %s", o.Transfer.Decisions, o.Transfer.Superseded, o.Transfer.Attempt)
	}
	check(attempt(b.ID, "100.111"), StatusApplied, "", true)
	check(attempt(b.ID, "5"), StatusRejected, CodeTransferIDConflict, true) // the 2020 API answers OK for it
	if !a.Balance.Equal(dec("899.89")) || !b.Balance.Equal(dec("200.11")) {
		t.Fatalf("balances %s / %s, want 899.89 / 200.11", a.Balance, b.Balance)
	}

	// Without an attempt (the v1 API, plain NATS producers) a rejection is final.
	v1 := Request{ID: uuid.New(), Kind: KindWithdrawal, From: b.ID, Amount: dec("1000"), Currency: "USD"}
	check(v1, StatusRejected, CodeInsufficientFunds, false)
	v1.Amount = dec("1")
	check(v1, StatusRejected, CodeTransferIDConflict, true)
	// ... until a 2020 attempt retries it.
	v1.Attempt = uuid.New()
	check(v1, StatusApplied, "", false)
}

// TestApplyRetriesInOneBatch: attempts of one id in one batch leave one
// transfer to save, in its final state.
func TestApplyRetriesInOneBatch(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("10")}
	b := &Account{ID: uuid.New(), Currency: "USD"}
	book := newBook(a, b)
	id := uuid.New()
	reqs := []Request{
		{ID: id, Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("20"), Currency: "USD", Attempt: uuid.New()},
		{ID: uuid.New(), Kind: KindDeposit, To: a.ID, Amount: dec("15"), Currency: "USD"},
		{ID: id, Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("20"), Currency: "USD", Attempt: uuid.New()},
		{ID: id, Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("20"), Currency: "USD", Attempt: uuid.New()},
	}
	out, ch := book.Apply(reqs, time.Now())
	if out[0].Status() != StatusRejected || out[2].Status() != StatusApplied || out[2].Replayed || !out[3].Replayed {
		t.Fatalf("outcomes: %s, %s replayed=%v, replayed=%v", out[0].Status(), out[2].Status(), out[2].Replayed, out[3].Replayed)
	}
	if len(ch.Transfers) != 2 || ch.Transfers[0].ID != id || ch.Transfers[0].Status != StatusApplied || ch.Transfers[0].Decisions != 2 {
		t.Fatalf("changes: %+v", ch.Transfers)
	}
	if !a.Balance.Equal(dec("5")) || !b.Balance.Equal(dec("20")) {
		t.Fatalf("balances %s / %s", a.Balance, b.Balance)
	}
}

func TestSupersededIsBounded(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD"}
	book := newBook(a)
	r := Request{ID: uuid.New(), Kind: KindWithdrawal, From: a.ID, Amount: dec("1"), Currency: "USD"}
	var last Outcome
	for i := 0; i < MaxSuperseded+10; i++ {
		r.Attempt = uuid.New()
		out, _ := book.Apply([]Request{r}, time.Now())
		last = out[0]
	}
	if len(last.Transfer.Superseded) != MaxSuperseded || last.Transfer.Decisions != MaxSuperseded+10 {
		t.Fatalf("superseded %d, decisions %d", len(last.Transfer.Superseded), last.Transfer.Decisions)
	}
}
