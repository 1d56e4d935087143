package transfer

import (
	"bytes"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// HoldState is where a hold is in its life.
type HoldState string

// A hold is created held and ends posted, voided or expired; those three
// are final. Pending and rejected are never stored in a Hold the book keeps:
// pending is a hold request not decided yet, rejected one decided against
// (Hold.Reason says why), both shown by reads only.
const (
	HoldStatePending  HoldState = "pending"
	HoldStateHeld     HoldState = "held"
	HoldStatePosted   HoldState = "posted"
	HoldStateVoided   HoldState = "voided"
	HoldStateExpired  HoldState = "expired"
	HoldStateRejected HoldState = "rejected"
)

// Hold is an applied hold request: Amount reserved on From for To until
// it is posted, voided or expires. Its ID is the hold request's id.
type Hold struct {
	ID           uuid.UUID
	From         uuid.UUID
	To           uuid.UUID
	Amount       decimal.Decimal
	PostedAmount decimal.Decimal // zero until posted
	Currency     string
	State        HoldState
	// Reason is the hold request's rejection, for a read of a rejected
	// hold; empty otherwise.
	Reason Code
	// ExpiresAt is when the service releases the hold if it is still
	// held; zero when the hold has no timeout.
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	// Metadata and Reference are the hold request's, for a read of the
	// hold; the batch never needs them.
	Metadata  map[string]string
	Reference string
}

// Due reports whether h is still held but its timeout has passed at now: it
// can no longer be posted or voided, and the next decision about it (a post,
// a void or the sweep) expires it.
func (h *Hold) Due(now time.Time) bool {
	return h.State == HoldStateHeld && !h.ExpiresAt.IsZero() && !now.Before(h.ExpiresAt)
}

// reserve creates the hold of an applied hold request.
func (b *Book) reserve(t Transfer, timeout time.Duration, ch *changeSet) {
	from := b.Accounts[t.From]
	from.Held = from.Held.Add(t.Amount)
	ch.account(from)
	h := &Hold{
		ID:        t.ID,
		From:      t.From,
		To:        t.To,
		Amount:    t.Amount,
		Currency:  t.Currency,
		State:     HoldStateHeld,
		CreatedAt: t.ProcessedAt,
		UpdatedAt: t.ProcessedAt,
	}
	if timeout > 0 {
		h.ExpiresAt = t.ProcessedAt.Add(timeout)
	}
	b.Holds[h.ID] = h
	ch.hold(h)
}

// release ends a held hold in state, giving its amount back to the sender's
// available balance.
func (b *Book) release(h *Hold, state HoldState, now time.Time, ch *changeSet) {
	from := b.Accounts[h.From]
	from.Held = from.Held.Sub(h.Amount)
	ch.account(from)
	h.State = state
	h.UpdatedAt = now
	ch.hold(h)
}

// settle decides a post or void of the hold t.HoldID and applies it. A hold
// whose timeout has passed is expired here, by the same decision that
// rejects the post or void: whichever of a post and the sweep is decided
// first under the sender's lock wins. A post or void filed under another
// account than the hold's sender (partition, when given) changes nothing.
func (b *Book) settle(t *Transfer, partition uuid.UUID, now time.Time, ch *changeSet) Code {
	h := b.Holds[t.HoldID]
	if h == nil {
		return CodeHoldNotFound
	}
	t.From, t.To, t.Currency = h.From, h.To, h.Currency
	if partition != uuid.Nil && partition != h.From {
		return CodeSubjectAccountMismatch
	}
	if b.Accounts[h.From] == nil || b.Accounts[h.To] == nil {
		// The store loads both accounts of every hold it loads; a hold
		// without them cannot be settled here.
		return CodeHoldNotFound
	}
	switch h.State {
	case HoldStatePosted:
		return CodeHoldAlreadyPosted
	case HoldStateVoided:
		return CodeHoldAlreadyVoided
	case HoldStateExpired:
		return CodeHoldExpired
	}
	if h.Due(now) {
		b.release(h, HoldStateExpired, now, ch)
		return CodeHoldExpired
	}
	if t.Kind == KindVoid {
		t.Amount = h.Amount
		b.release(h, HoldStateVoided, now, ch)
		return ""
	}
	if t.Amount.IsZero() {
		t.Amount = h.Amount
	}
	precision, ok := b.Precisions[h.Currency]
	if !ok {
		return CodeCurrencyNotSupported
	}
	t.Amount = RoundAmount(t.Amount, precision)
	if !t.Amount.IsPositive() {
		return CodeTransferAmountMustBePositive
	}
	if t.Amount.GreaterThan(h.Amount) {
		return CodePostAmountExceedsHold
	}
	// Release first: the posted amount is part of what the hold reserved,
	// so the sender's available balance covers it.
	b.release(h, HoldStatePosted, now, ch)
	h.PostedAmount = t.Amount
	b.book(*t, ch)
	return ""
}

// Expire expires every hold of the book that is due at now, releasing what
// it reserved, and returns the changes to save: the holds and the senders'
// accounts, in hold id order. Holds not due are left alone, so the sweep
// may load holds a post settled meanwhile.
func (b *Book) Expire(now time.Time) Changes {
	due := make([]*Hold, 0, len(b.Holds))
	for _, h := range b.Holds {
		if h.Due(now) && b.Accounts[h.From] != nil {
			due = append(due, h)
		}
	}
	sort.Slice(due, func(i, j int) bool { return bytes.Compare(due[i].ID[:], due[j].ID[:]) < 0 })
	var ch changeSet
	for _, h := range due {
		b.release(h, HoldStateExpired, now, &ch)
	}
	return ch.Changes
}
