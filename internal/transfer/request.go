package transfer

import (
	"crypto/sha256"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// Kind says which accounts a request moves money between.
type Kind string

// The three kinds of request.
const (
	KindTransfer   Kind = "transfer"   // From -> To, both wallet accounts
	KindDeposit    Kind = "deposit"    // outside world -> To
	KindWithdrawal Kind = "withdrawal" // From -> outside world
)

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool {
	return k == KindTransfer || k == KindDeposit || k == KindWithdrawal
}

// Request asks the ledger to move money. Its ID is the idempotency key: a
// request is applied at most once, and a second request with the same ID
// gets the first one's outcome (or CodeTransferIDConflict if its fields
// differ) - unless it is a new attempt (see Attempt) and every earlier
// decision under the ID was a rejection.
type Request struct {
	ID   uuid.UUID
	Kind Kind
	// From is the debited account (transfers and withdrawals); uuid.Nil for a deposit.
	From uuid.UUID
	// To is the credited account (transfers and deposits); uuid.Nil for a withdrawal.
	To     uuid.UUID
	Amount decimal.Decimal
	// Currency is the code as given; NormalizeCurrency upper-cases it.
	Currency string
	// SubmittedAt is when the service accepted the request.
	SubmittedAt time.Time
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
// the debited account, or for a deposit the credited one.
func (r Request) PartitionAccount() uuid.UUID {
	if r.Kind == KindDeposit {
		return r.To
	}
	return r.From
}

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
// amount positive and within limits, currency code shaped like one. It
// returns nil or an *Error whose Code is the first rule broken, in the
// original service's order.
func (r Request) Validate() *Error {
	if r.ID == uuid.Nil {
		return errorf(CodeTransferIDIsEmpty, "id is required")
	}
	switch r.Kind {
	case KindTransfer:
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
	default:
		return errorf(CodeInvalidKind, "kind must be transfer, deposit or withdrawal")
	}
	if !r.Amount.IsPositive() {
		return errorf(CodeTransferAmountMustBePositive, "amount must be greater than zero")
	}
	if len(r.Amount.Truncate(0).Abs().String()) > MaxIntegerDigits {
		return errorf(CodeInvalidAmount, "amount has more than 18 integer digits")
	}
	if !ValidCurrencyShape(NormalizeCurrency(r.Currency)) {
		return errorf(CodeCurrencyNotSupported, "currency code must be 2 to 12 letters or digits")
	}
	return nil
}

// Fingerprint identifies a request's content, so that a resubmission can be
// told apart from a different request reusing the id. It covers the kind,
// both accounts, the amount as requested (trailing zeros ignored: "1.10" is
// "1.1") and the normalised currency; not the submission time.
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
	return sha256.Sum256([]byte(b.String()))
}
