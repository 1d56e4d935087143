package transfer

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
	// CodeInvalidKind: the request kind is not transfer, deposit or withdrawal.
	CodeInvalidKind Code = "invalid_kind"
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
