package transfer

import (
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Status is a decided request's final state.
type Status string

// A request is either applied or rejected; both are final.
const (
	StatusApplied  Status = "applied"
	StatusRejected Status = "rejected"
)

// Direction says whether an entry moved money into or out of its account.
type Direction string

// Entry directions.
const (
	DirectionCredit Direction = "credit"
	DirectionDebit  Direction = "debit"
)

// Account is an account: what a batch reads and changes, and what a view
// shows.
type Account struct {
	ID       uuid.UUID
	Currency string
	Balance  decimal.Decimal
	// Held is the sum of the amounts of the account's holds in state
	// HoldStateHeld (as sender). It is part of Balance that cannot be spent.
	Held decimal.Decimal
	// Version counts the entries ever written for the account; entry N
	// carries version N, so a statement pages by version. Holds, voids and
	// expiries write no entries and leave it alone.
	Version int64
	// CreatedAt and UpdatedAt are set when the account is read for a view;
	// a batch neither needs nor changes them.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Metadata is the client's, set at creation and by a patch; read for a
	// view, never by a batch.
	Metadata map[string]string
}

// Available is what the account can spend: its balance less what its holds
// reserve. Every rule that debits an account checks it.
func (a *Account) Available() decimal.Decimal { return a.Balance.Sub(a.Held) }

// Transfer is a decided request as stored: applied, or rejected with a reason.
type Transfer struct {
	ID     uuid.UUID
	Kind   Kind
	Status Status
	Reason Code // empty when applied
	From   uuid.UUID
	To     uuid.UUID
	// Amount is rounded to the currency's precision when the currency is
	// known; otherwise it is the amount as requested.
	Amount      decimal.Decimal
	Currency    string
	Fingerprint [32]byte
	// AcceptedAt is the request's acceptance time (Request.AcceptedAt);
	// ProcessedAt is when it was decided.
	AcceptedAt  time.Time
	ProcessedAt time.Time
	// Attempt is the attempt (Request.Attempt) that made this decision;
	// uuid.Nil for a request without one.
	Attempt uuid.UUID
	// Decisions counts the decisions made under the ID: 1, plus one for
	// every rejection a later attempt replaced.
	Decisions int
	// Superseded holds the attempts whose rejections were replaced, oldest
	// first, at most MaxSuperseded of them (attempts without an id are
	// not listed).
	Superseded []uuid.UUID
	// HoldID is the hold a post or void settled (or tried to).
	HoldID uuid.UUID
	// Reverses is the request a reversal moved money back for.
	Reverses uuid.UUID
	// ReversedAmount is the sum of the applied reversals of this request;
	// never above Amount.
	ReversedAmount decimal.Decimal
	// Metadata and Reference are the request's, as given (nil and "" when
	// none). A request rejected CodeReferenceAlreadyUsed keeps no
	// Reference: the reference belongs to the request that has it.
	Metadata  map[string]string
	Reference string
}

// MaxSuperseded bounds Transfer.Superseded, so that a client retrying a
// rejected id without end cannot grow its row without end. An attempt
// evicted from the list would be decided afresh if it were delivered again,
// which needs that many newer attempts decided while its message is still
// unacknowledged.
const MaxSuperseded = 64

// DecidedAttempt reports whether attempt made this decision or one it
// replaced.
func (t Transfer) DecidedAttempt(attempt uuid.UUID) bool {
	if attempt == uuid.Nil {
		return false
	}
	if t.Attempt == attempt {
		return true
	}
	for _, a := range t.Superseded {
		if a == attempt {
			return true
		}
	}
	return false
}

// Entry is one account's side of an applied transfer, with the balance it
// left behind (a running balance, so a statement needs no recomputation).
type Entry struct {
	AccountID    uuid.UUID
	Version      int64
	TransferID   uuid.UUID
	Kind         Kind
	Direction    Direction
	Amount       decimal.Decimal // positive; Direction gives the sign
	BalanceAfter decimal.Decimal
	Counterparty uuid.UUID // uuid.Nil for deposits and withdrawals
	Currency     string
	CreatedAt    time.Time
}

// Outcome is what became of one request of a batch.
type Outcome struct {
	// Transfer is the stored decision for the request's id. For a conflict it
	// is the earlier, unchanged transfer.
	Transfer Transfer
	// Replayed is true when the id had been decided before this request
	// (earlier in the batch or in an earlier batch): nothing changed.
	Replayed bool
	// Conflict is true when the id was used before with other fields.
	Conflict bool
}

// Status is the outcome as a client sees it: a conflict is a rejection.
func (o Outcome) Status() Status {
	if o.Conflict {
		return StatusRejected
	}
	return o.Transfer.Status
}

// Reason is the rejection code as a client sees it, empty when applied.
func (o Outcome) Reason() Code {
	if o.Conflict {
		return CodeTransferIDConflict
	}
	return o.Transfer.Reason
}

// Book is the state a batch is applied to: the currencies' precisions, the
// accounts the batch names (missing ones do not exist) including the
// accounts of the holds and reversed requests it names, the transfers
// already decided for the batch's ids and for the requests its reversals
// name, and the holds its posts and voids name (missing ones do not exist).
type Book struct {
	Precisions Currencies
	Accounts   map[uuid.UUID]*Account
	Decided    map[uuid.UUID]Transfer
	Holds      map[uuid.UUID]*Hold
	// References maps the references the batch names that earlier
	// requests took to those requests' ids; Apply adds the ones it gives
	// out.
	References map[string]uuid.UUID
}

// Changes is what a batch wrote: the transfers it decided (one per id, in its
// final state: an id decided twice in the batch appears once), the entries
// to insert, the accounts whose balance or held sum changed, the holds it
// created or changed, and the requests whose ReversedAmount changed, each
// in the order it happened and each once, in its final state. A transfer
// whose Decisions is above 1 may replace a stored rejection; the store tells
// new ids from stored ones, and new holds from stored ones.
type Changes struct {
	Transfers []Transfer
	Entries   []Entry
	Accounts  []*Account
	Holds     []*Hold
	Reversed  []Transfer
}

// changeSet gathers a batch's Changes, each account, hold and reversed
// request once.
type changeSet struct {
	Changes
	accounts map[uuid.UUID]bool
	holds    map[uuid.UUID]bool
	// reversed lists the requests whose ReversedAmount changed, in order.
	reversed    []uuid.UUID
	reversedSet map[uuid.UUID]bool
}

func (c *changeSet) account(a *Account) {
	if c.accounts == nil {
		c.accounts = make(map[uuid.UUID]bool)
	}
	if !c.accounts[a.ID] {
		c.accounts[a.ID] = true
		c.Accounts = append(c.Accounts, a)
	}
}

func (c *changeSet) hold(h *Hold) {
	if c.holds == nil {
		c.holds = make(map[uuid.UUID]bool)
	}
	if !c.holds[h.ID] {
		c.holds[h.ID] = true
		c.Holds = append(c.Holds, h)
	}
}

// Apply applies reqs in order, so an earlier request can make a later one
// fail or succeed, and returns one outcome per request plus the changes to
// save. It updates b in place: applying the same requests again changes
// nothing and returns the same decisions as replays.
func (b *Book) Apply(reqs []Request, now time.Time) ([]Outcome, Changes) {
	if b.Holds == nil {
		b.Holds = make(map[uuid.UUID]*Hold)
	}
	outcomes := make([]Outcome, len(reqs))
	var ch changeSet
	saved := make(map[uuid.UUID]int) // id -> index in ch.Transfers
	for i, r := range reqs {
		fp := r.Fingerprint()
		prev, decided := b.Decided[r.ID]
		if decided && !r.Retries(prev) {
			outcomes[i] = Outcome{Transfer: prev, Replayed: true, Conflict: prev.Fingerprint != fp}
			continue
		}
		t := b.decide(r, fp, now, &ch)
		if decided {
			t.Decisions = prev.Decisions + 1
			t.Superseded = supersede(prev)
		}
		if r.ID != uuid.Nil {
			b.Decided[r.ID] = t
			if j, ok := saved[r.ID]; ok {
				ch.Transfers[j] = t
			} else {
				saved[r.ID] = len(ch.Transfers)
				ch.Transfers = append(ch.Transfers, t)
			}
		}
		outcomes[i] = Outcome{Transfer: t}
	}
	for _, id := range ch.reversed {
		ch.Reversed = append(ch.Reversed, b.Decided[id])
	}
	return outcomes, ch.Changes
}

// supersede lists the attempts a new decision replaces: prev's own, after
// the ones prev replaced, keeping the newest MaxSuperseded.
func supersede(prev Transfer) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(prev.Superseded)+1)
	out = append(out, prev.Superseded...)
	if prev.Attempt != uuid.Nil {
		out = append(out, prev.Attempt)
	}
	if len(out) > MaxSuperseded {
		out = out[len(out)-MaxSuperseded:]
	}
	return out
}

// decide checks every rule and returns the transfer, applied or rejected,
// after making its changes to the book and recording them in ch.
func (b *Book) decide(r Request, fp [32]byte, now time.Time, ch *changeSet) Transfer {
	t := Transfer{
		ID:          r.ID,
		Kind:        r.Kind,
		Status:      StatusRejected,
		From:        r.From,
		To:          r.To,
		Amount:      r.Amount,
		Currency:    NormalizeCurrency(r.Currency),
		Fingerprint: fp,
		AcceptedAt:  r.AcceptedAt,
		ProcessedAt: now,
		Attempt:     r.Attempt,
		Decisions:   1,
		HoldID:      r.HoldID,
		Reverses:    r.Reverses,
		Metadata:    r.Metadata,
		Reference:   r.Reference,
	}
	// Labels beyond their limits are rejected by Validate below and never
	// stored (no decoder lets them through; a direct caller might).
	if len(t.Metadata) == 0 || CheckMetadata(t.Metadata) != nil {
		t.Metadata = nil
	}
	if CheckReference(t.Reference) != nil {
		t.Reference = ""
	}
	if code := b.takeReference(r); code != "" {
		t.Reason, t.Reference = code, ""
		return t
	}
	if err := r.Validate(); err != nil {
		t.Reason = err.Code
		return t
	}
	switch r.Kind {
	case KindPost, KindVoid:
		t.Reason = b.settle(&t, r.Partition, now, ch)
	case KindReversal:
		t.Reason = b.reverse(&t, r.Partition, ch)
	default:
		t.Reason = b.move(&t, r.Timeout, ch)
	}
	if t.Reason == "" {
		t.Status = StatusApplied
	}
	return t
}

// takeReference gives r its reference before any other rule is checked, so
// that every stored request with a reference, applied or rejected, owns it
// (the store's unique index holds them all). A reference another id took
// first is CodeReferenceAlreadyUsed; one of the wrong shape is left for
// Validate, and stored by no one.
func (b *Book) takeReference(r Request) Code {
	if r.Reference == "" || r.ID == uuid.Nil || CheckReference(r.Reference) != nil {
		return ""
	}
	if owner, taken := b.References[r.Reference]; taken && owner != r.ID {
		return CodeReferenceAlreadyUsed
	}
	if b.References == nil {
		b.References = make(map[string]uuid.UUID)
	}
	b.References[r.Reference] = r.ID
	return ""
}

// move decides a transfer, deposit, withdrawal or hold and applies it.
func (b *Book) move(t *Transfer, timeout time.Duration, ch *changeSet) Code {
	precision, ok := b.Precisions[t.Currency]
	var code Code
	if t.Amount, code = roundTo(t.Amount, precision, ok); code != "" {
		return code
	}
	if code := b.checkAccounts(*t); code != "" {
		return code
	}
	if t.Kind == KindHold {
		b.reserve(*t, timeout, ch)
		return ""
	}
	b.book(*t, ch)
	return ""
}

// checkAccounts applies the account rules in the original service's order:
// existence, currency, then funds.
func (b *Book) checkAccounts(t Transfer) Code {
	from, to := b.Accounts[t.From], b.Accounts[t.To]
	switch t.Kind {
	case KindTransfer, KindHold:
		switch {
		case from == nil:
			return CodeSenderAccountNotExist
		case to == nil:
			return CodeReceiverAccountNotExist
		case from.Currency != t.Currency:
			return CodeSenderAccountWrongCurrency
		case to.Currency != t.Currency:
			return CodeReceiverAccountWrongCurrency
		case from.Available().LessThan(t.Amount):
			return CodeInsufficientFunds
		}
	case KindDeposit:
		switch {
		case to == nil:
			return CodeAccountNotExist
		case to.Currency != t.Currency:
			return CodeAccountWrongCurrency
		}
	case KindWithdrawal:
		switch {
		case from == nil:
			return CodeAccountNotExist
		case from.Currency != t.Currency:
			return CodeAccountWrongCurrency
		case from.Available().LessThan(t.Amount):
			return CodeInsufficientFunds
		}
	}
	return ""
}

// book moves an applied request's money, writes its entries (debit first)
// and records the accounts it changed.
func (b *Book) book(t Transfer, ch *changeSet) {
	entry := func(a *Account, dir Direction, counterparty uuid.UUID) Entry {
		if dir == DirectionDebit {
			a.Balance = a.Balance.Sub(t.Amount)
		} else {
			a.Balance = a.Balance.Add(t.Amount)
		}
		a.Version++
		ch.account(a)
		return Entry{
			AccountID:    a.ID,
			Version:      a.Version,
			TransferID:   t.ID,
			Kind:         t.Kind,
			Direction:    dir,
			Amount:       t.Amount,
			BalanceAfter: a.Balance,
			Counterparty: counterparty,
			Currency:     t.Currency,
			CreatedAt:    t.ProcessedAt,
		}
	}
	if t.From != uuid.Nil {
		ch.Entries = append(ch.Entries, entry(b.Accounts[t.From], DirectionDebit, t.To))
	}
	if t.To != uuid.Nil {
		ch.Entries = append(ch.Entries, entry(b.Accounts[t.To], DirectionCredit, t.From))
	}
}
