package transfer

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// Reversible reports whether an applied request of kind k can be reversed:
// those that moved money once, not holds, voids or reversals themselves.
func (k Kind) Reversible() bool {
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
	// Metadata is the client's labels on the request (see CheckMetadata);
	// nil when none were given, and an empty map means the same.
	Metadata map[string]string
	// Reference is the client's own id for the request, unique across all
	// requests (see CheckReference); "" when none was given.
	Reference string
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
	// The metadata, then the reference. The decoders check them first (a
	// body with bad ones is refused whole); here they come last, so the
	// codes of the rules above keep their order.
	if e := CheckMetadata(r.Metadata); e != nil {
		return e
	}
	return CheckReference(r.Reference)
}

// MaxReferenceLen bounds a reference, in characters.
const MaxReferenceLen = 128

// CheckMetadata is ValidateMetadata with the domain's error type, for a
// request's rules. The error's detail names the first key at fault, in key
// order.
func CheckMetadata(m map[string]string) *Error {
	if len(m) == 0 {
		return nil
	}
	err := ValidateMetadata(m)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(CodeInvalidMetadata, err.Error())
}

// CheckReference checks a request's reference: "" is none, else 1 to
// MaxReferenceLen printable characters (letters, marks, numbers,
// punctuation, symbols and the ASCII space; no control or format
// characters, no invalid UTF-8).
func CheckReference(ref string) *Error {
	if ref == "" {
		return nil
	}
	n := 0
	for _, r := range ref {
		n++
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return errorf(CodeInvalidReference, "reference must be printable characters")
		}
	}
	if n > MaxReferenceLen {
		return errorf(CodeInvalidReference, "reference has "+strconv.Itoa(n)+" characters, at most "+strconv.Itoa(MaxReferenceLen))
	}
	return nil
}

// Check applies every rule that needs no account, in the order Book.Apply
// applies them: Validate, then, for the kinds that name their currency
// (transfer, deposit, withdrawal, hold), the currency's existence and the
// amount rounded to its precision, which must stay positive. precision
// answers for a normalised currency code. The gateway refuses with it what
// the workers would reject with the same code.
func (r Request) Check(precision func(currency string) (int32, bool)) *Error {
	if e := r.Validate(); e != nil {
		return e
	}
	if r.Kind.NamesNoAccount() {
		return nil
	}
	currency := NormalizeCurrency(r.Currency)
	p, ok := precision(currency)
	if _, code := roundTo(r.Amount, p, ok); code != "" {
		if code == CodeCurrencyNotSupported {
			return errorf(code, "currency "+strconv.Quote(currency)+" is not supported")
		}
		return errorf(code, "the amount rounds to zero at "+currency+"'s "+strconv.Itoa(int(p))+" fraction digits")
	}
	return nil
}

// roundTo rounds amount to a currency's precision, or says why it cannot
// be moved: the currency is unknown, or the amount rounds to zero or less.
func roundTo(amount decimal.Decimal, precision int32, known bool) (decimal.Decimal, Code) {
	if !known {
		return amount, CodeCurrencyNotSupported
	}
	amount = RoundAmount(amount, precision)
	if !amount.IsPositive() {
		return amount, CodeTransferAmountMustBePositive
	}
	return amount, ""
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
// The metadata and reference are covered when either is given, so the same
// id with other labels is a conflict. The fingerprints of requests without
// them, and of transfers, deposits and withdrawals, are the ones stored
// before labels (and holds) existed.
func (r Request) Fingerprint() [32]byte {
	b := make([]byte, 0, 192)
	b = append(b, "v1\x00"...)
	b = append(b, r.Kind...)
	b = append(b, 0)
	b = append(b, r.From.String()...)
	b = append(b, 0)
	b = append(b, r.To.String()...)
	b = append(b, 0)
	b = append(b, r.Amount.String()...)
	b = append(b, 0)
	b = append(b, NormalizeCurrency(r.Currency)...)
	switch r.Kind {
	case KindHold, KindPost, KindVoid, KindReversal:
		b = append(b, 0)
		b = append(b, r.HoldID.String()...)
		b = append(b, 0)
		b = append(b, r.Reverses.String()...)
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(r.Timeout), 10)
	}
	if len(r.Metadata) > 0 || r.Reference != "" {
		b = appendLabels(b, r.Metadata, r.Reference)
	}
	return sha256.Sum256(b)
}

// ParseID reads a request or account id as it travels on the wire and in
// subjects: the canonical 36-character form, hex digits in any case. The
// other forms uuid.Parse accepts (braces, "urn:uuid:", bare hex) are
// refused, so an id that reaches a subject or a query is exactly 32 hex
// digits and four dashes. It takes a string or a body's bytes without
// copying either; it is the service's one UUID parser.
func ParseID[T ~string | ~[]byte](s T) (uuid.UUID, bool) {
	var u uuid.UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	for i, x := range idHexOffsets {
		hi, lo := unhex[s[x]], unhex[s[x+1]]
		if hi|lo > 0x0f {
			return uuid.Nil, false
		}
		u[i] = hi<<4 | lo
	}
	return u, true
}

// idHexOffsets are where the 16 bytes' hex pairs start in the 36-character
// form.
var idHexOffsets = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// unhex maps a hex digit to its value and every other byte to 0xff, so one
// table look-up replaces a switch per digit on the path of every request.
var unhex = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()
