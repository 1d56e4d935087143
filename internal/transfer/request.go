package transfer

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Kind says what a request does and which accounts it moves money between.
type Kind string

// The kinds of request.
const (
	KindTransfer   Kind = "transfer"   // From -> To, both wallet accounts
	KindDeposit    Kind = "deposit"    // outside world -> To
	KindWithdrawal Kind = "withdrawal" // From -> outside world
	// KindHold reserves Amount on From for To: From's available balance
	// falls, no balance moves.
	KindHold Kind = "hold"
	// KindPost settles the hold HoldID: at most its amount moves From -> To,
	// the rest is released.
	KindPost Kind = "post"
	// KindVoid releases the hold HoldID; nothing moves.
	KindVoid Kind = "void"
	// KindReversal moves money of the applied request Reverses back, from
	// its receiver to its sender.
	KindReversal Kind = "reversal"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	switch k {
	case KindTransfer, KindDeposit, KindWithdrawal, KindHold, KindPost, KindVoid, KindReversal:
		return true
	}
	return false
}

// Settles reports whether k names an existing hold (post and void) rather
// than accounts.
func (k Kind) Settles() bool { return k == KindPost || k == KindVoid }

// reversible reports whether an applied request of kind k can be reversed:
// those that moved money once, not holds, voids or reversals themselves.
func (k Kind) reversible() bool {
	return k == KindTransfer || k == KindDeposit || k == KindWithdrawal || k == KindPost
}

// MaxHoldTimeout bounds Request.Timeout: a hold lives at most 30 days.
const MaxHoldTimeout = 30 * 24 * time.Hour

// Request asks the ledger to move money. Its ID is the idempotency key: a
// request is applied at most once, and a second request with the same ID
// gets the first one's outcome (or CodeTransferIDConflict if its fields
// differ) - unless it is a new attempt (see Attempt) and every earlier
// decision under the ID was a rejection.
type Request struct {
	ID   uuid.UUID
	Kind Kind
	// From is the debited account (transfers and withdrawals) or the account
	// a hold reserves on; uuid.Nil for a deposit. Posts, voids and reversals
	// leave From, To and Currency empty: they take them from the hold or
	// the reversed request.
	From uuid.UUID
	// To is the credited account (transfers and deposits) or a hold's
	// receiver; uuid.Nil for a withdrawal.
	To uuid.UUID
	// Amount is the amount as requested. For a post and a reversal zero
	// means "not given": the whole hold, or what is left to reverse.
	Amount decimal.Decimal
	// Currency is the code as given; NormalizeCurrency upper-cases it.
	Currency string
	// HoldID names the hold a post or void settles: the hold request's id.
	HoldID uuid.UUID
	// Reverses names the request a reversal moves money back for.
	Reverses uuid.UUID
	// Partition is the account a post, void or reversal was filed under
	// (its NATS subject's account), which their bodies do not name. It
	// must be the hold's sender, or the account the reversal debits (for
	// a reversed withdrawal, the account it credits): else the request is
	// rejected with CodeSubjectAccountMismatch, because requests are
	// applied in order only within one account's partition. uuid.Nil
	// skips the check (a caller of the store that files nothing). Not
	// part of the fingerprint; ignored for the other kinds, whose
	// partition their accounts give.
	Partition uuid.UUID
	// Timeout is how long an applied hold lives before the service expires
	// it, counted from when it was applied; zero keeps it until it is
	// posted or voided. At most MaxHoldTimeout.
	Timeout time.Duration
	// AcceptedAt is when the service accepted the request: the requests
	// stream's timestamp of its message (the HTTP API's and the outcome
	// message's accepted_at). The store keeps it in submitted_at.
	AcceptedAt time.Time
	// Attempt makes the request positive-idempotent, as the 2020 API is:
	// only a success is remembered. It names this attempt (a fresh id per
	// attempt, not per delivery). When the ID's stored decision is a
	// rejection made by another attempt, the request is decided afresh with
	// its own fields; a redelivery of the same attempt replays. uuid.Nil
	// (every v1 request) keeps rejections final.
	Attempt uuid.UUID
}

// Retries reports whether r is decided afresh although its ID has the
// stored decision prev: r is a positive-idempotent attempt, prev rejected
// the ID, and prev was not made by (or after) this same attempt.
func (r Request) Retries(prev Transfer) bool {
	return r.Attempt != uuid.Nil && prev.Status == StatusRejected && !prev.DecidedAttempt(r.Attempt)
}

// PartitionAccount is the account whose requests must be applied in order:
// the debited account (a hold's sender), or for a deposit the credited one.
// A post, void or reversal does not name its accounts: it returns
// r.Partition, which whoever files the request sets to the hold's sender
// or the account the reversal debits (only the hold or the reversed
// request tells which), and the book checks.
func (r Request) PartitionAccount() uuid.UUID {
	switch r.Kind {
	case KindDeposit:
		return r.To
	case KindPost, KindVoid, KindReversal:
		return r.Partition
	}
	return r.From
}

// NamesNoAccount reports whether requests of kind k name no account in
// their body (posts, voids and reversals), so that their partition account
// is given beside them (Request.Partition).
func (k Kind) NamesNoAccount() bool { return k.Settles() || k == KindReversal }

// NormalizeCurrency upper-cases a currency code: 'usd' and 'USD' are one currency.
func NormalizeCurrency(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// ValidCurrencyShape reports whether code (already normalised) could name a
// currency: 2 to 12 letters or digits. Whether it is supported is a question
// for the currencies table.
func ValidCurrencyShape(code string) bool {
	if len(code) < 2 || len(code) > 12 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Validate checks what needs no database: ids present, accounts different,
// amount positive and within limits, currency code shaped like one, a
// hold's timeout within MaxHoldTimeout; for a post or void the hold named,
// for a reversal the request named, and an amount, when given, positive.
// It returns nil or an *Error whose Code is the first rule broken, in the
// original service's order.
func (r Request) Validate() *Error {
	if r.ID == uuid.Nil {
		return errorf(CodeTransferIDIsEmpty, "id is required")
	}
	switch r.Kind {
	case KindTransfer, KindHold:
		if r.From == uuid.Nil {
			return errorf(CodeSenderAccountIDIsEmpty, "from_account_id is required")
		}
		if r.To == uuid.Nil {
			return errorf(CodeReceiverAccountIDIsEmpty, "to_account_id is required")
		}
		if r.From == r.To {
			return errorf(CodeAccountsMustBeDifferent, "from_account_id and to_account_id are the same account")
		}
	case KindDeposit:
		if r.To == uuid.Nil || r.From != uuid.Nil {
			return errorf(CodeAccountIDIsEmpty, "account_id is required")
		}
	case KindWithdrawal:
		if r.From == uuid.Nil || r.To != uuid.Nil {
			return errorf(CodeAccountIDIsEmpty, "account_id is required")
		}
	case KindPost, KindVoid:
		if r.HoldID == uuid.Nil {
			return errorf(CodeHoldIDIsEmpty, "hold_id is required")
		}
		if r.Kind == KindVoid {
			return nil
		}
		if r.Amount.IsZero() { // the whole hold
			return nil
		}
		return validAmount(r.Amount)
	case KindReversal:
		if r.Reverses == uuid.Nil {
			return errorf(CodeReversedTransferIDIsEmpty, "transfer_id of the transfer to reverse is required")
		}
		if r.Amount.IsZero() { // what is left to reverse
			return nil
		}
		return validAmount(r.Amount)
	default:
		return errorf(CodeInvalidKind, "kind must be transfer, deposit, withdrawal, hold, post, void or reversal")
	}
	if err := validAmount(r.Amount); err != nil {
		return err
	}
	if !ValidCurrencyShape(NormalizeCurrency(r.Currency)) {
		return errorf(CodeCurrencyNotSupported, "currency code must be 2 to 12 letters or digits")
	}
	if r.Kind == KindHold && (r.Timeout < 0 || r.Timeout > MaxHoldTimeout) {
		return errorf(CodeInvalidTimeout, "timeout must be between 0 and 30 days")
	}
	return nil
}

func validAmount(amount decimal.Decimal) *Error {
	if !amount.IsPositive() {
		return errorf(CodeTransferAmountMustBePositive, "amount must be greater than zero")
	}
	if len(amount.Truncate(0).Abs().String()) > MaxIntegerDigits {
		return errorf(CodeInvalidAmount, "amount has more than 18 integer digits")
	}
	return nil
}

// Fingerprint identifies a request's content, so that a resubmission can be
// told apart from a different request reusing the id. It covers the kind,
// both accounts, the amount as requested (trailing zeros ignored: "1.10" is
// "1.1") and the normalised currency; for the kinds added with holds also
// the hold, the reversed request and the timeout. Not the submission time.
// The fingerprints of transfers, deposits and withdrawals are the ones
// stored before holds existed.
func (r Request) Fingerprint() [32]byte {
	var b strings.Builder
	b.WriteString("v1\x00")
	b.WriteString(string(r.Kind))
	b.WriteByte(0)
	b.WriteString(r.From.String())
	b.WriteByte(0)
	b.WriteString(r.To.String())
	b.WriteByte(0)
	b.WriteString(r.Amount.String())
	b.WriteByte(0)
	b.WriteString(NormalizeCurrency(r.Currency))
	switch r.Kind {
	case KindHold, KindPost, KindVoid, KindReversal:
		b.WriteByte(0)
		b.WriteString(r.HoldID.String())
		b.WriteByte(0)
		b.WriteString(r.Reverses.String())
		b.WriteByte(0)
		b.WriteString(strconv.FormatInt(int64(r.Timeout), 10))
	}
	return sha256.Sum256([]byte(b.String()))
}
