package gateway

import (
	"errors"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// The decoders turn a request body into a transfer.Request, checking syntax
// only: JSON shape, UUIDs, amounts. Rules that need no database but are the
// domain's (ids present, accounts different, amount positive) are left to
// transfer.Request.Validate, so the gateway and the workers judge a request
// by the same code.

var (
	transferFields = []string{"id", "from_account_id", "to_account_id", "amount", "currency"}
	movementFields = []string{"id", "account_id", "amount", "currency"}
	legacyFields   = []string{"id", "sender_account_id", "receiver_account_id", "amount", "currency_code"}
)

// decodeTransfer reads POST /v1/transfers.
func decodeTransfer(body []byte) (transfer.Request, *Problem) {
	var v [5]jsonValue
	if p := readObject(body, transferFields, v[:]); p != nil {
		return transfer.Request{}, p
	}
	r := transfer.Request{Kind: transfer.KindTransfer}
	var p *Problem
	if r.ID, p = stringID(transferFields[0], v[0]); p != nil {
		return r, p
	}
	if r.From, p = stringID(transferFields[1], v[1]); p != nil {
		return r, p
	}
	if r.To, p = stringID(transferFields[2], v[2]); p != nil {
		return r, p
	}
	if r.Amount, p = amount(v[3], false); p != nil {
		return r, p
	}
	r.Currency, p = stringField(transferFields[4], v[4])
	return r, p
}

// decodeMovement reads POST /v1/deposits and POST /v1/withdrawals: one
// account, credited by a deposit and debited by a withdrawal.
func decodeMovement(kind transfer.Kind, body []byte) (transfer.Request, *Problem) {
	var v [4]jsonValue
	if p := readObject(body, movementFields, v[:]); p != nil {
		return transfer.Request{}, p
	}
	r := transfer.Request{Kind: kind}
	var p *Problem
	if r.ID, p = stringID(movementFields[0], v[0]); p != nil {
		return r, p
	}
	account, p := stringID(movementFields[1], v[1])
	if p != nil {
		return r, p
	}
	if kind == transfer.KindDeposit {
		r.To = account
	} else {
		r.From = account
	}
	if r.Amount, p = amount(v[2], false); p != nil {
		return r, p
	}
	r.Currency, p = stringField(movementFields[3], v[3])
	return r, p
}

// decodeLegacyTransfer reads the original API's POST /transfers/. Its
// clients sent the amount as a JSON number as often as a string; a number is
// read from its text, exactly, never through a float. A missing amount is
// zero, which the domain rejects as not positive, as the original did.
func decodeLegacyTransfer(body []byte) (transfer.Request, *Problem) {
	var v [5]jsonValue
	if p := readObject(body, legacyFields, v[:]); p != nil {
		return transfer.Request{}, p
	}
	r := transfer.Request{Kind: transfer.KindTransfer}
	var p *Problem
	if r.ID, p = stringID(legacyFields[0], v[0]); p != nil {
		return r, p
	}
	if r.From, p = stringID(legacyFields[1], v[1]); p != nil {
		return r, p
	}
	if r.To, p = stringID(legacyFields[2], v[2]); p != nil {
		return r, p
	}
	if r.Amount, p = amount(v[3], true); p != nil {
		return r, p
	}
	r.Currency, p = stringField(legacyFields[4], v[4])
	return r, p
}

// stringField returns a string value; absent and null are "".
func stringField(field string, v jsonValue) (string, *Problem) {
	switch v.kind {
	case kindString:
		return string(v.text), nil
	case kindAbsent, kindNull:
		return "", nil
	}
	return "", typeProblem(field, v.kind)
}

// stringID reads a UUID field. Absent, null and "" are uuid.Nil, which the
// domain reports with its *_is_empty codes.
func stringID(field string, v jsonValue) (uuid.UUID, *Problem) {
	switch v.kind {
	case kindString:
	case kindAbsent, kindNull:
		return uuid.Nil, nil
	default:
		return uuid.Nil, typeProblem(field, v.kind)
	}
	if len(v.text) == 0 {
		return uuid.Nil, nil
	}
	id, ok := parseIDBytes(v.text)
	if !ok {
		return uuid.Nil, fieldProblem(CodeInvalidField, field,
			"Field "+strconv.Quote(field)+" must be a UUID such as \"3f1c9d2e-8b4a-4c1e-9f2a-6d5b7e8c9a0b\".")
	}
	return id, nil
}

// parseID accepts only the canonical 36-character form, in any case, so an
// id that reaches a subject or a query is exactly 32 hex digits and four
// dashes (uuid.Parse alone also takes braces, "urn:uuid:" and bare hex).
func parseID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// parseIDBytes is parseID on a body's bytes, without copying them.
func parseIDBytes(b []byte) (uuid.UUID, bool) {
	if len(b) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.ParseBytes(b)
	return id, err == nil
}

// amount reads an amount: a decimal string, or for the original API also a
// JSON number. Syntax errors are invalid_amount; the sign and rounding are
// the domain's to judge.
func amount(v jsonValue, numberAllowed bool) (decimal.Decimal, *Problem) {
	switch {
	case v.kind == kindString, v.kind == kindNumber && numberAllowed:
		d, err := transfer.ParseAmount(string(v.text))
		if err != nil {
			return decimal.Decimal{}, fieldProblem(transfer.CodeInvalidAmount, "amount", sentence(err))
		}
		return d, nil
	case numberAllowed && (v.kind == kindAbsent || v.kind == kindNull):
		return decimal.Zero, nil
	case v.kind == kindAbsent || v.kind == kindNull:
		return decimal.Decimal{}, fieldProblem(transfer.CodeInvalidAmount, "amount",
			"Field \"amount\" is required: a decimal string such as \"100.25\".")
	}
	return decimal.Decimal{}, typeProblem("amount", v.kind)
}

// sentence renders a domain error's detail as a sentence for a problem.
func sentence(err error) string {
	detail := err.Error()
	var e *transfer.Error
	if errors.As(err, &e) && e.Detail != "" {
		detail = e.Detail
	}
	return strings.ToUpper(detail[:1]) + detail[1:] + "."
}
