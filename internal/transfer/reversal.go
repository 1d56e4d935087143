package transfer

import "github.com/google/uuid"

// reverse decides a reversal of t.Reverses and applies it: money goes back
// from the reversed request's receiver to its sender. Reversing a deposit
// takes money out of the account (a withdrawal's shape), reversing a
// withdrawal puts it back (a deposit's shape). A reversal filed under
// another account than the one it debits (partition, when given; for a
// reversed withdrawal the account it credits) changes nothing.
func (b *Book) reverse(t *Transfer, partition uuid.UUID, ch *changeSet) Code {
	orig, ok := b.Decided[t.Reverses]
	if !ok {
		return CodeTransferNotFound
	}
	t.From, t.To, t.Currency = orig.To, orig.From, orig.Currency
	if orig.Status != StatusApplied || !orig.Kind.Reversible() {
		return CodeTransferNotReversible
	}
	if partition != uuid.Nil && partition != ReversalAccount(orig) {
		return CodeSubjectAccountMismatch
	}
	left := orig.Amount.Sub(orig.ReversedAmount)
	if t.Amount.IsZero() {
		t.Amount = left
		if !left.IsPositive() {
			return CodeReversalExceedsTransfer
		}
	}
	precision, ok := b.Precisions[orig.Currency]
	if !ok {
		return CodeCurrencyNotSupported
	}
	t.Amount = RoundAmount(t.Amount, precision)
	if !t.Amount.IsPositive() {
		return CodeTransferAmountMustBePositive
	}
	if t.Amount.GreaterThan(left) {
		return CodeReversalExceedsTransfer
	}
	if t.From != uuid.Nil {
		from := b.Accounts[t.From]
		if from == nil {
			// The store loads the accounts of every request it loads
			// for a reversal; without them nothing can move.
			return CodeAccountNotExist
		}
		if from.Available().LessThan(t.Amount) {
			return CodeInsufficientFunds
		}
	}
	if t.To != uuid.Nil && b.Accounts[t.To] == nil {
		return CodeAccountNotExist
	}
	orig.ReversedAmount = orig.ReversedAmount.Add(t.Amount)
	b.Decided[orig.ID] = orig
	ch.reverse(orig.ID)
	b.book(*t, ch)
	return ""
}

func (c *changeSet) reverse(id uuid.UUID) {
	if c.reversedSet == nil {
		c.reversedSet = make(map[uuid.UUID]bool)
	}
	if !c.reversedSet[id] {
		c.reversedSet[id] = true
		c.reversed = append(c.reversed, id)
	}
}

// ReversalAccount is the partition account of a reversal of orig: the
// account it debits, orig's receiver, or for a withdrawal (no receiver) the
// account it credits back.
func ReversalAccount(orig Transfer) uuid.UUID {
	if orig.To != uuid.Nil {
		return orig.To
	}
	return orig.From
}
