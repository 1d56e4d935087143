package transfer

import "errors"

// Code is a stable, snake_case reason carried on the wire and stored with a
// rejected transfer. Codes never change meaning once published.
type Code string

// Codes kept from the original synchronous service.
const (
	CodeTransferIDIsEmpty            Code = "transfer_id_is_empty"
	CodeSenderAccountIDIsEmpty       Code = "sender_account_id_is_empty"
	CodeReceiverAccountIDIsEmpty     Code = "receiver_account_id_is_empty"
	CodeAccountsMustBeDifferent      Code = "accounts_must_be_different"
	CodeTransferAmountMustBePositive Code = "transfer_amount_must_be_positive"
	CodeCurrencyNotSupported         Code = "currency_not_supported"
	CodeInsufficientFunds            Code = "insufficient_funds"
	CodeSenderAccountNotExist        Code = "sender_account_not_exist"
	CodeReceiverAccountNotExist      Code = "receiver_account_not_exist"
	CodeSenderAccountWrongCurrency   Code = "sender_account_wrong_currency"
	CodeReceiverAccountWrongCurrency Code = "receiver_account_wrong_currency"
)

// Codes added for deposits, withdrawals and the asynchronous design.
const (
	// CodeAccountIDIsEmpty: a deposit or withdrawal names no account.
	CodeAccountIDIsEmpty Code = "account_id_is_empty"
	// CodeAccountNotExist: the deposit's or withdrawal's account is unknown.
	CodeAccountNotExist Code = "account_not_exist"
	// CodeAccountWrongCurrency: the account holds another currency.
	CodeAccountWrongCurrency Code = "account_wrong_currency"
	// CodeTransferIDConflict: the id was already used for a request with
	// different fields. The stored transfer is left as it was.
	CodeTransferIDConflict Code = "transfer_id_conflict"
	// CodeInvalidAmount: the amount is not a plain decimal string within
	// the accepted size (see ParseAmount).
	CodeInvalidAmount Code = "invalid_amount"
	// CodeInvalidKind: the request kind is not one of the Kind constants.
	CodeInvalidKind Code = "invalid_kind"
)

// Codes added with holds and reversals.
const (
	// CodeHoldIDIsEmpty: a post or void names no hold.
	CodeHoldIDIsEmpty Code = "hold_id_is_empty"
	// CodeHoldNotFound: no applied hold has the id a post or void names.
	CodeHoldNotFound Code = "hold_not_found"
	// CodeHoldAlreadyPosted: the hold was posted by another request.
	CodeHoldAlreadyPosted Code = "hold_already_posted"
	// CodeHoldAlreadyVoided: the hold was voided by another request.
	CodeHoldAlreadyVoided Code = "hold_already_voided"
	// CodeHoldExpired: the hold's timeout passed before the post or void
	// was applied; the service released it.
	CodeHoldExpired Code = "hold_expired"
	// CodePostAmountExceedsHold: a post asks for more than the hold reserved.
	CodePostAmountExceedsHold Code = "post_amount_exceeds_hold"
	// CodeInvalidTimeout: a hold's timeout is negative or over 30 days.
	CodeInvalidTimeout Code = "invalid_timeout"
	// CodeReversedTransferIDIsEmpty: a reversal names no transfer.
	CodeReversedTransferIDIsEmpty Code = "reversed_transfer_id_is_empty"
	// CodeTransferNotFound: no decided request has the id a reversal names.
	CodeTransferNotFound Code = "transfer_not_found"
	// CodeTransferNotReversible: the named request is not an applied
	// transfer, deposit, withdrawal or post.
	CodeTransferNotReversible Code = "transfer_not_reversible"
	// CodeReversalExceedsTransfer: the reversal would take the reversed
	// sum past the transfer's amount.
	CodeReversalExceedsTransfer Code = "reversal_exceeds_transfer"
	// CodeSubjectAccountMismatch: a post, void or reversal was filed under
	// an account (Request.Partition) other than the hold's sender or the
	// account the reversal debits, so it could overtake requests of that
	// account. Nothing was applied; file it under the right account with a
	// new id.
	CodeSubjectAccountMismatch Code = "subject_account_mismatch"
)

// Codes added with metadata and references.
const (
	// CodeInvalidReference: the reference is empty, too long or not
	// printable (CheckReference).
	CodeInvalidReference Code = "invalid_reference"
	// CodeReferenceAlreadyUsed: another request, under another id, has the
	// reference. The rejection is final and does not take the reference.
	CodeReferenceAlreadyUsed Code = "reference_already_used"
)

// Error is a domain rule violation with its stable code.
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Detail
}

func errorf(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Errors the store returns, declared here so that the gateway and the
// worker match them without knowing the store. Callers match them with
// errors.Is.
var (
	// ErrNotFound: nothing has the given id.
	ErrNotFound = errors.New("not found")
	// ErrAccountConflict: an account with this id exists with another
	// currency.
	ErrAccountConflict = errors.New("account exists with another currency")
	// ErrCurrencyNotSupported: the currency is not a supported one.
	ErrCurrencyNotSupported = errors.New("currency not supported")
	// ErrBadCursor: a pagination cursor that the store did not issue.
	ErrBadCursor = errors.New("bad cursor")
	// ErrBadFilter: a list filter naming no value the list knows (a hold
	// state other than held, posted, voided or expired).
	ErrBadFilter = errors.New("bad filter")
	// ErrRefused: the store refuses a batch for a reason the same requests
	// would meet again (a value or a constraint the database rejects), so
	// applying the batch again as it is cannot succeed.
	ErrRefused = errors.New("the store refuses the batch")
)
