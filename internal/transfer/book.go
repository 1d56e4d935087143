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

// Account is the part of an account a batch reads and changes.
type Account struct {
	ID       uuid.UUID
	Currency string
	Balance  decimal.Decimal
	// Version counts the entries ever written for the account; entry N
	// carries version N, so a statement pages by version.
	Version int64
}

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
	SubmittedAt time.Time
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
// accounts the batch names (missing ones do not exist), and the transfers
// already decided for the batch's ids.
type Book struct {
	Precisions map[string]int32
	Accounts   map[uuid.UUID]*Account
	Decided    map[uuid.UUID]Transfer
}

// Changes is what a batch wrote: the transfers it decided (one per id, in its
// final state: an id decided twice in the batch appears once), the entries
// to insert and the accounts whose balance changed, each in the order it
// happened. A transfer whose Decisions is above 1 may replace a stored
// rejection; the store tells new ids from stored ones.
type Changes struct {
	Transfers []Transfer
	Entries   []Entry
	Accounts  []*Account
}

// Apply applies reqs in order, so an earlier request can make a later one
// fail or succeed, and returns one outcome per request plus the changes to
// save. It updates b in place: applying the same requests again changes
// nothing and returns the same decisions as replays.
func (b *Book) Apply(reqs []Request, now time.Time) ([]Outcome, Changes) {
	outcomes := make([]Outcome, len(reqs))
	var ch Changes
	touched := make(map[uuid.UUID]bool)
	saved := make(map[uuid.UUID]int) // id -> index in ch.Transfers
	for i, r := range reqs {
		fp := r.Fingerprint()
		prev, decided := b.Decided[r.ID]
		if decided && !r.Retries(prev) {
			outcomes[i] = Outcome{Transfer: prev, Replayed: true, Conflict: prev.Fingerprint != fp}
			continue
		}
		t := b.decide(r, fp, now)
		if decided {
			t.Decisions = prev.Decisions + 1
			t.Superseded = supersede(prev)
		}
		if t.Status == StatusApplied {
			ch.Entries = append(ch.Entries, b.post(t)...)
			for _, id := range []uuid.UUID{t.From, t.To} {
				if id != uuid.Nil && !touched[id] {
					touched[id] = true
					ch.Accounts = append(ch.Accounts, b.Accounts[id])
				}
			}
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
	return outcomes, ch
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

// decide checks every rule and returns the transfer, applied or rejected.
func (b *Book) decide(r Request, fp [32]byte, now time.Time) Transfer {
	t := Transfer{
		ID:          r.ID,
		Kind:        r.Kind,
		Status:      StatusRejected,
		From:        r.From,
		To:          r.To,
		Amount:      r.Amount,
		Currency:    NormalizeCurrency(r.Currency),
		Fingerprint: fp,
		SubmittedAt: r.SubmittedAt,
		ProcessedAt: now,
		Attempt:     r.Attempt,
		Decisions:   1,
	}
	if err := r.Validate(); err != nil {
		t.Reason = err.Code
		return t
	}
	precision, ok := b.Precisions[t.Currency]
	if !ok {
		t.Reason = CodeCurrencyNotSupported
		return t
	}
	t.Amount = RoundAmount(r.Amount, precision)
	if !t.Amount.IsPositive() {
		t.Reason = CodeTransferAmountMustBePositive
		return t
	}
	if code := b.checkAccounts(t); code != "" {
		t.Reason = code
		return t
	}
	t.Status = StatusApplied
	return t
}

// checkAccounts applies the account rules in the original service's order:
// existence, currency, then funds.
func (b *Book) checkAccounts(t Transfer) Code {
	from, to := b.Accounts[t.From], b.Accounts[t.To]
	switch t.Kind {
	case KindTransfer:
		switch {
		case from == nil:
			return CodeSenderAccountNotExist
		case to == nil:
			return CodeReceiverAccountNotExist
		case from.Currency != t.Currency:
			return CodeSenderAccountWrongCurrency
		case to.Currency != t.Currency:
			return CodeReceiverAccountWrongCurrency
		case from.Balance.LessThan(t.Amount):
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
		case from.Balance.LessThan(t.Amount):
			return CodeInsufficientFunds
		}
	}
	return ""
}

// post moves an applied transfer's money and returns its entries: debit first.
func (b *Book) post(t Transfer) []Entry {
	var out []Entry
	entry := func(a *Account, dir Direction, counterparty uuid.UUID) Entry {
		if dir == DirectionDebit {
			a.Balance = a.Balance.Sub(t.Amount)
		} else {
			a.Balance = a.Balance.Add(t.Amount)
		}
		a.Version++
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
		out = append(out, entry(b.Accounts[t.From], DirectionDebit, t.To))
	}
	if t.To != uuid.Nil {
		out = append(out, entry(b.Accounts[t.To], DirectionCredit, t.From))
	}
	return out
}
