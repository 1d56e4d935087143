package transfer

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// applyOne applies reqs to book at now and checks the outcomes' codes; ""
// stands for applied.
func applyOne(t *testing.T, book *Book, now time.Time, reqs []Request, want ...Code) ([]Outcome, Changes) {
	t.Helper()
	out, ch := book.Apply(reqs, now)
	for i, w := range want {
		if got := out[i].Reason(); got != w || (w == "") != (out[i].Status() == StatusApplied) {
			t.Fatalf("request %d (%s): %s/%s, want %q", i, reqs[i].Kind, out[i].Status(), got, w)
		}
	}
	return out, ch
}

func checkAccount(t *testing.T, a *Account, balance, available string) {
	t.Helper()
	if !a.Balance.Equal(dec(balance)) || !a.Available().Equal(dec(available)) {
		t.Fatalf("account %s: balance %s available %s, want %s / %s", a.ID, a.Balance, a.Available(), balance, available)
	}
}

func TestHoldPostVoid(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("100")}
	b := &Account{ID: uuid.New(), Currency: "USD"}
	eur := &Account{ID: uuid.New(), Currency: "EUR"}
	book := newBook(a, b, eur)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	hold := Request{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec("60.004"), Currency: "usd"}
	_, ch := applyOne(t, book, now, []Request{hold}, "")
	checkAccount(t, a, "100", "40")
	checkAccount(t, b, "0", "0")
	if len(ch.Entries) != 0 || len(ch.Holds) != 1 || len(ch.Accounts) != 1 || a.Version != 0 {
		t.Fatalf("a hold wrote %d entries, %d holds, %d accounts, version %d", len(ch.Entries), len(ch.Holds), len(ch.Accounts), a.Version)
	}
	h := book.Holds[hold.ID]
	if h.State != HoldStateHeld || !h.Amount.Equal(dec("60")) || !h.ExpiresAt.IsZero() || h.From != a.ID || h.To != b.ID {
		t.Fatalf("hold %+v", h)
	}

	// What is held cannot be spent, by a transfer, a withdrawal or another hold.
	applyOne(t, book, now, []Request{
		{ID: uuid.New(), Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("40.01"), Currency: "USD"},
		{ID: uuid.New(), Kind: KindWithdrawal, From: a.ID, Amount: dec("41"), Currency: "USD"},
		{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec("50"), Currency: "USD"},
	}, CodeInsufficientFunds, CodeInsufficientFunds, CodeInsufficientFunds)
	checkAccount(t, a, "100", "40")

	// A post of more than the hold is refused and leaves it held.
	post := Request{ID: uuid.New(), Kind: KindPost, HoldID: hold.ID, Amount: dec("60.01")}
	applyOne(t, book, now, []Request{post}, CodePostAmountExceedsHold)
	if h.State != HoldStateHeld {
		t.Fatalf("refused post changed the hold to %s", h.State)
	}
	// A post of part of it moves that part and releases the rest.
	post = Request{ID: uuid.New(), Kind: KindPost, HoldID: hold.ID, Amount: dec("25.5")}
	out, ch := applyOne(t, book, now, []Request{post, post}, "", "")
	checkAccount(t, a, "74.5", "74.5")
	checkAccount(t, b, "25.5", "25.5")
	if !out[1].Replayed || len(ch.Entries) != 2 || ch.Entries[0].Kind != KindPost || ch.Entries[0].Direction != DirectionDebit {
		t.Fatalf("post: replayed=%v entries %+v", out[1].Replayed, ch.Entries)
	}
	if tr := out[0].Transfer; tr.From != a.ID || tr.To != b.ID || tr.Currency != "USD" || !tr.Amount.Equal(dec("25.5")) || tr.HoldID != hold.ID {
		t.Fatalf("post transfer %+v", tr)
	}
	if h.State != HoldStatePosted || !h.PostedAmount.Equal(dec("25.5")) {
		t.Fatalf("posted hold %+v", h)
	}
	// Posted once: a second post or a void under other ids is refused.
	applyOne(t, book, now, []Request{
		{ID: uuid.New(), Kind: KindPost, HoldID: hold.ID},
		{ID: uuid.New(), Kind: KindVoid, HoldID: hold.ID},
		{ID: uuid.New(), Kind: KindPost, HoldID: uuid.New()},
		{ID: uuid.New(), Kind: KindVoid},
	}, CodeHoldAlreadyPosted, CodeHoldAlreadyPosted, CodeHoldNotFound, CodeHoldIDIsEmpty)

	// A hold, its void and a post after the void, in one batch. A post
	// without an amount would have taken the whole hold.
	hold2 := Request{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec("70"), Currency: "USD", Timeout: time.Hour}
	applyOne(t, book, now, []Request{
		hold2,
		{ID: uuid.New(), Kind: KindVoid, HoldID: hold2.ID},
		{ID: uuid.New(), Kind: KindPost, HoldID: hold2.ID},
		{ID: uuid.New(), Kind: KindHold, From: a.ID, To: eur.ID, Amount: dec("1"), Currency: "USD"},
		{ID: uuid.New(), Kind: KindHold, From: a.ID, To: a.ID, Amount: dec("1"), Currency: "USD"},
		{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec("1"), Currency: "USD", Timeout: MaxHoldTimeout + time.Second},
		{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec("1"), Currency: "USD", Timeout: -time.Second},
	}, "", "", CodeHoldAlreadyVoided, CodeReceiverAccountWrongCurrency, CodeAccountsMustBeDifferent, CodeInvalidTimeout, CodeInvalidTimeout)
	checkAccount(t, a, "74.5", "74.5")
	if h2 := book.Holds[hold2.ID]; h2.State != HoldStateVoided || !h2.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("voided hold %+v", h2)
	}
}

func TestHoldExpiry(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "JPY", Balance: dec("1000")}
	b := &Account{ID: uuid.New(), Currency: "JPY"}
	book := newBook(a, b)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hold := func(amount string, timeout time.Duration) Request {
		return Request{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec(amount), Currency: "JPY", Timeout: timeout}
	}
	short, long, forever := hold("100", time.Minute), hold("200", time.Hour), hold("300", 0)
	applyOne(t, book, now, []Request{short, long, forever}, "", "", "")
	checkAccount(t, a, "1000", "400")

	// Before its time a hold is not due, and the sweep leaves it.
	if ch := book.Expire(now.Add(time.Minute - time.Nanosecond)); len(ch.Holds) != 0 || len(ch.Accounts) != 0 {
		t.Fatalf("early sweep changed %d holds", len(ch.Holds))
	}
	// At its time a post is refused and expires it in the same decision.
	at := now.Add(time.Minute)
	_, ch := applyOne(t, book, at, []Request{{ID: uuid.New(), Kind: KindPost, HoldID: short.ID}}, CodeHoldExpired)
	if s := book.Holds[short.ID]; s.State != HoldStateExpired || !s.UpdatedAt.Equal(at) || len(ch.Holds) != 1 || len(ch.Accounts) != 1 {
		t.Fatalf("hold after a late post: %+v, %d holds changed", s, len(ch.Holds))
	}
	checkAccount(t, a, "1000", "500")
	applyOne(t, book, at, []Request{{ID: uuid.New(), Kind: KindVoid, HoldID: short.ID}}, CodeHoldExpired)

	// The sweep expires what is due and nothing else; sweeping again is a no-op.
	ch = book.Expire(now.Add(2 * time.Hour))
	if len(ch.Holds) != 1 || ch.Holds[0].ID != long.ID || ch.Holds[0].State != HoldStateExpired || len(ch.Accounts) != 1 || len(ch.Entries) != 0 {
		t.Fatalf("sweep: %+v", ch)
	}
	if ch = book.Expire(now.Add(2 * time.Hour)); len(ch.Holds) != 0 {
		t.Fatalf("second sweep changed %d holds", len(ch.Holds))
	}
	checkAccount(t, a, "1000", "700")
	if book.Holds[forever.ID].State != HoldStateHeld {
		t.Fatal("a hold without a timeout expired")
	}
	// A void of an expired hold is refused as expired, not voided.
	applyOne(t, book, at, []Request{{ID: uuid.New(), Kind: KindVoid, HoldID: long.ID}}, CodeHoldExpired)
	applyOne(t, book, now.Add(30*24*time.Hour), []Request{{ID: uuid.New(), Kind: KindPost, HoldID: forever.ID}}, "")
	checkAccount(t, a, "700", "700")
	checkAccount(t, b, "300", "300")
}

func TestReversals(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("100")}
	b := &Account{ID: uuid.New(), Currency: "USD"}
	book := newBook(a, b)
	now := time.Now()
	reversal := func(of uuid.UUID, amount string) Request {
		r := Request{ID: uuid.New(), Kind: KindReversal, Reverses: of}
		if amount != "" {
			r.Amount = dec(amount)
		}
		return r
	}
	tr := Request{ID: uuid.New(), Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("30"), Currency: "USD"}
	rejected := Request{ID: uuid.New(), Kind: KindTransfer, From: a.ID, To: b.ID, Amount: dec("1000"), Currency: "USD"}
	applyOne(t, book, now, []Request{tr, rejected}, "", CodeInsufficientFunds)

	first := reversal(tr.ID, "10.004")
	out, ch := applyOne(t, book, now, []Request{first, reversal(tr.ID, "20.01")}, "", CodeReversalExceedsTransfer)
	checkAccount(t, a, "80", "80")
	checkAccount(t, b, "20", "20")
	if r := out[0].Transfer; r.From != b.ID || r.To != a.ID || !r.Amount.Equal(dec("10")) || r.Reverses != tr.ID || r.Currency != "USD" {
		t.Fatalf("reversal %+v", r)
	}
	if len(ch.Reversed) != 1 || ch.Reversed[0].ID != tr.ID || !ch.Reversed[0].ReversedAmount.Equal(dec("10")) {
		t.Fatalf("reversed %+v", ch.Reversed)
	}
	// Without an amount a reversal takes what is left; then nothing is.
	rest := reversal(tr.ID, "")
	out, _ = applyOne(t, book, now, []Request{rest, reversal(tr.ID, ""), reversal(tr.ID, "0.01")}, "", CodeReversalExceedsTransfer, CodeReversalExceedsTransfer)
	if !out[0].Transfer.Amount.Equal(dec("20")) || !book.Decided[tr.ID].ReversedAmount.Equal(dec("30")) {
		t.Fatalf("rest: %s, reversed %s", out[0].Transfer.Amount, book.Decided[tr.ID].ReversedAmount)
	}
	checkAccount(t, a, "100", "100")
	checkAccount(t, b, "0", "0")

	// Deposits come back out, withdrawals go back in; the receiver needs the funds.
	dep := Request{ID: uuid.New(), Kind: KindDeposit, To: b.ID, Amount: dec("50"), Currency: "USD"}
	wd := Request{ID: uuid.New(), Kind: KindWithdrawal, From: a.ID, Amount: dec("40"), Currency: "USD"}
	hold := Request{ID: uuid.New(), Kind: KindHold, From: b.ID, To: a.ID, Amount: dec("45"), Currency: "USD"}
	out, ch = applyOne(t, book, now, []Request{dep, wd, hold, reversal(dep.ID, "10"), reversal(dep.ID, "5"), reversal(wd.ID, "")},
		"", "", "", CodeInsufficientFunds, "", "")
	if r := out[4].Transfer; r.From != b.ID || r.To != uuid.Nil {
		t.Fatalf("reversal of a deposit %+v", r)
	}
	if r := out[5].Transfer; r.From != uuid.Nil || r.To != a.ID || !r.Amount.Equal(dec("40")) {
		t.Fatalf("reversal of a withdrawal %+v", r)
	}
	checkAccount(t, a, "100", "100")
	checkAccount(t, b, "45", "0")

	// A post is reversible; a hold, a void, a reversal and a rejection are not.
	post := Request{ID: uuid.New(), Kind: KindPost, HoldID: hold.ID, Amount: dec("15")}
	void := Request{ID: uuid.New(), Kind: KindVoid, HoldID: uuid.New()}
	applyOne(t, book, now, []Request{post, void, reversal(post.ID, ""), reversal(hold.ID, ""), reversal(void.ID, ""),
		reversal(first.ID, ""), reversal(rejected.ID, ""), reversal(uuid.New(), ""), {ID: uuid.New(), Kind: KindReversal}},
		"", CodeHoldNotFound, "", CodeTransferNotReversible, CodeTransferNotReversible,
		CodeTransferNotReversible, CodeTransferNotReversible, CodeTransferNotFound, CodeReversedTransferIDIsEmpty)
	checkAccount(t, a, "100", "100")
	checkAccount(t, b, "45", "45")
}

func TestFingerprintCoversHoldFields(t *testing.T) {
	t.Parallel()
	// The fingerprints stored before holds existed must not change (the
	// figure was computed by the code before holds).
	old := Request{ID: uuid.MustParse("6f1c2a8e-1111-4a4a-9b9b-000000000001"), Kind: KindTransfer,
		From: uuid.MustParse("6f1c2a8e-2222-4a4a-9b9b-000000000002"), To: uuid.MustParse("6f1c2a8e-3333-4a4a-9b9b-000000000003"),
		Amount: dec("100.10"), Currency: "usd"}
	if got := old.Fingerprint(); got != [32]byte{0x56, 0x12, 0x5d, 0x25, 0x12, 0xa2, 0x4e, 0xac, 0x92, 0x63, 0xa2, 0xa2, 0x5d, 0xe2, 0x16, 0xaa,
		0x2f, 0x8b, 0x08, 0x3b, 0xe5, 0x14, 0x86, 0xa2, 0xcb, 0xc2, 0x89, 0x2b, 0x3e, 0xc7, 0x01, 0xf4} {
		t.Fatalf("transfer fingerprint changed: %x", got)
	}
	hold := Request{ID: uuid.New(), Kind: KindHold, From: uuid.New(), To: uuid.New(), Amount: dec("1"), Currency: "USD", Timeout: time.Hour}
	longer := hold
	longer.Timeout = 2 * time.Hour
	post := Request{ID: uuid.New(), Kind: KindPost, HoldID: uuid.New()}
	other := post
	other.HoldID = uuid.New()
	whole := post
	whole.Amount = dec("1")
	rev := Request{ID: uuid.New(), Kind: KindReversal, Reverses: post.HoldID}
	for _, pair := range [][2]Request{{hold, longer}, {post, other}, {post, whole}, {post, rev}} {
		if pair[0].Fingerprint() == pair[1].Fingerprint() {
			t.Errorf("%+v and %+v share a fingerprint", pair[0], pair[1])
		}
	}
}
