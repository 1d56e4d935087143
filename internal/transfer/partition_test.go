package transfer

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestPartitionOfSettlementsAndReversals checks that a post, void or
// reversal filed under an account other than the one that orders it is
// refused without changing anything, and that the right account (or none
// given) is accepted.
func TestPartitionOfSettlementsAndReversals(t *testing.T) {
	t.Parallel()
	a := &Account{ID: uuid.New(), Currency: "USD", Balance: dec("100")}
	b := &Account{ID: uuid.New(), Currency: "USD"}
	book := newBook(a, b)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	hold := Request{ID: uuid.New(), Kind: KindHold, From: a.ID, To: b.ID, Amount: dec("60"), Currency: "USD", Timeout: time.Minute}
	dep := Request{ID: uuid.New(), Kind: KindDeposit, To: b.ID, Amount: dec("5"), Currency: "USD"}
	wd := Request{ID: uuid.New(), Kind: KindWithdrawal, From: a.ID, Amount: dec("1"), Currency: "USD"}
	applyOne(t, book, now, []Request{hold, dep, wd}, "", "", "")

	// Under the receiver's account, a post and a void change nothing, even
	// when the hold is due (the due hold is left for the right partition).
	late := now.Add(2 * time.Minute)
	applyOne(t, book, late, []Request{
		{ID: uuid.New(), Kind: KindPost, HoldID: hold.ID, Partition: b.ID},
		{ID: uuid.New(), Kind: KindVoid, HoldID: hold.ID, Partition: b.ID},
	}, CodeSubjectAccountMismatch, CodeSubjectAccountMismatch)
	if h := book.Holds[hold.ID]; h.State != HoldStateHeld {
		t.Fatalf("a refused post left the hold %s", h.State)
	}
	checkAccount(t, a, "99", "39")

	post := Request{ID: uuid.New(), Kind: KindPost, HoldID: hold.ID, Amount: dec("10"), Partition: a.ID}
	applyOne(t, book, now, []Request{post}, "")
	checkAccount(t, a, "89", "89")
	checkAccount(t, b, "15", "15")

	// A reversal is filed under the account it debits: the receiver, or
	// for a withdrawal the account it credits back.
	applyOne(t, book, now, []Request{
		{ID: uuid.New(), Kind: KindReversal, Reverses: post.ID, Partition: a.ID},
		{ID: uuid.New(), Kind: KindReversal, Reverses: dep.ID, Partition: a.ID},
		{ID: uuid.New(), Kind: KindReversal, Reverses: wd.ID, Partition: b.ID},
	}, CodeSubjectAccountMismatch, CodeSubjectAccountMismatch, CodeSubjectAccountMismatch)
	checkAccount(t, a, "89", "89")
	checkAccount(t, b, "15", "15")
	applyOne(t, book, now, []Request{
		{ID: uuid.New(), Kind: KindReversal, Reverses: post.ID, Partition: b.ID},
		{ID: uuid.New(), Kind: KindReversal, Reverses: dep.ID, Partition: b.ID},
		{ID: uuid.New(), Kind: KindReversal, Reverses: wd.ID, Partition: a.ID},
	}, "", "", "")
	checkAccount(t, a, "100", "100")
	checkAccount(t, b, "0", "0")

	// The partition account a request reports is the one it was filed under.
	for _, r := range []Request{post, {Kind: KindVoid, Partition: b.ID}, {Kind: KindReversal, Partition: b.ID}} {
		if r.PartitionAccount() != r.Partition {
			t.Fatalf("%s: partition account %s, filed under %s", r.Kind, r.PartitionAccount(), r.Partition)
		}
	}
	if got := ReversalAccount(book.Decided[wd.ID]); got != a.ID {
		t.Fatalf("reversal account of a withdrawal: %s", got)
	}
}
