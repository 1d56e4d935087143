package gateway

import (
	"errors"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// The decoders turn a request body into a transfer.Request, checking syntax
// only: JSON shape, UUIDs, amounts, and the metadata's and reference's
// limits (a body with bad ones is refused whole, as the requests stream
// dead-letters it). Rules that need no database but are the domain's (ids
// present, accounts different, amount positive) are left to
// transfer.Request.Check, so the gateway and the workers judge a request by
// the same code.

var (
	transferFields = []string{"id", "from_account_id", "to_account_id", "amount", "currency", "metadata", "reference"}
	movementFields = []string{"id", "account_id", "amount", "currency", "metadata", "reference"}
	legacyFields   = []string{"id", "sender_account_id", "receiver_account_id", "amount", "currency_code"}

	transferReader = wire.Reader{Names: transferFields}
	movementReader = wire.Reader{Names: movementFields}
	legacyReader   = wire.Reader{Names: legacyFields}
)

// decodeTransfer reads POST /v1/transfers.
func decodeTransfer(body []byte) (transfer.Request, *Problem) {
	var v [7]wire.Value
	if p := readObject(body, &transferReader, v[:]); p != nil {
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
	if r.Currency, p = stringField(transferFields[4], v[4]); p != nil {
		return r, p
	}
	return r, labels(&r, v[5], v[6])
}

// decodeMovement reads POST /v1/deposits and POST /v1/withdrawals: one
// account, credited by a deposit and debited by a withdrawal.
func decodeMovement(kind transfer.Kind, body []byte) (transfer.Request, *Problem) {
	var v [6]wire.Value
	if p := readObject(body, &movementReader, v[:]); p != nil {
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
	if r.Currency, p = stringField(movementFields[3], v[3]); p != nil {
		return r, p
	}
	return r, labels(&r, v[4], v[5])
}

// decodeLegacyTransfer reads the original API's POST /transfers/. Its
// clients sent the amount as a JSON number as often as a string; a number is
// read from its text, exactly, never through a float. A missing amount is
// zero, which the domain rejects as not positive, as the original did.
func decodeLegacyTransfer(body []byte) (transfer.Request, *Problem) {
	var v [5]wire.Value
	if p := readObject(body, &legacyReader, v[:]); p != nil {
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
func stringField(field string, v wire.Value) (string, *Problem) {
	switch v.Kind {
	case wire.String:
		return string(v.Text), nil
	case wire.Absent, wire.Null:
		return "", nil
	}
	return "", typeProblem(field, v.Kind)
}

// stringID reads a UUID field. Absent, null and "" are uuid.Nil, which the
// domain reports with its *_is_empty codes.
func stringID(field string, v wire.Value) (uuid.UUID, *Problem) {
	switch v.Kind {
	case wire.String:
	case wire.Absent, wire.Null:
		return uuid.Nil, nil
	default:
		return uuid.Nil, typeProblem(field, v.Kind)
	}
	if len(v.Text) == 0 {
		return uuid.Nil, nil
	}
	id, ok := transfer.ParseID(v.Text)
	if !ok {
		return uuid.Nil, fieldProblem(CodeInvalidField, field,
			"Field "+strconv.Quote(field)+" must be a UUID such as \"3f1c9d2e-8b4a-4c1e-9f2a-6d5b7e8c9a0b\".")
	}
	return id, nil
}

// labels reads the optional metadata and reference into r and checks their
// limits. Absent and null are none.
func labels(r *transfer.Request, meta, ref wire.Value) *Problem {
	var err *wire.LabelError
	if r.Metadata, r.Reference, err = wire.Labels(meta, ref); err != nil {
		return fieldProblem(err.Code, err.Field, sentence(err.Err))
	}
	return nil
}

// amount reads an amount: a decimal string, or for the original API also a
// JSON number. Syntax errors are invalid_amount; the sign and rounding are
// the domain's to judge.
func amount(v wire.Value, numberAllowed bool) (decimal.Decimal, *Problem) {
	switch {
	case v.Kind == wire.String, v.Kind == wire.Number && numberAllowed:
		d, err := transfer.ParseAmount(string(v.Text))
		if err != nil {
			return decimal.Decimal{}, fieldProblem(transfer.CodeInvalidAmount, "amount", sentence(err))
		}
		return d, nil
	case numberAllowed && (v.Kind == wire.Absent || v.Kind == wire.Null):
		return decimal.Zero, nil
	case v.Kind == wire.Absent || v.Kind == wire.Null:
		return decimal.Decimal{}, fieldProblem(transfer.CodeInvalidAmount, "amount",
			"Field \"amount\" is required: a decimal string such as \"100.25\".")
	}
	return decimal.Decimal{}, typeProblem("amount", v.Kind)
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

// Every request body the gateway accepts is one flat JSON object whose values
// are strings (or, for the original API's amount, a number), read strictly by
// wire.Reader, the same reader the requests stream's decoder uses. This file
// turns its errors into problems.

// readObject decodes body into vals with rd, as a problem when it cannot.
func readObject(body []byte, rd *wire.Reader, vals []wire.Value) *Problem {
	_, err := rd.Read(body, vals)
	if err == nil {
		return nil
	}
	switch err.Kind {
	case wire.Unknown:
		return fieldProblem(CodeUnknownField, err.Field, "Unknown field "+strconv.Quote(err.Field)+".")
	case wire.Duplicate:
		return fieldProblem(CodeDuplicateField, err.Field, "Field "+strconv.Quote(err.Field)+" appears more than once.")
	case wire.BadMetadata:
		return fieldProblem(transfer.CodeInvalidMetadata, wire.FieldMetadata, "Field \"metadata\" must be an object of strings: "+err.Detail+".")
	}
	switch {
	case err.Detail == "empty":
		return problem(CodeMalformedJSON, "The request body is empty; a JSON object is required.")
	case err.Detail == "not an object":
		return problem(CodeMalformedJSON, "The request body must be a JSON object.")
	case strings.HasPrefix(err.Detail, "at byte"):
		return problem(CodeMalformedJSON, "Malformed JSON "+err.Detail+".")
	}
	return problem(CodeMalformedJSON, "Malformed JSON: "+err.Detail+".")
}

// clip shortens a hostile value before it is echoed back or logged.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// typeProblem reports a value of the wrong type for a string field; amounts
// have their own code.
func typeProblem(field string, got wire.Kind) *Problem {
	code := CodeInvalidField
	if field == "amount" {
		code = transfer.CodeInvalidAmount
	}
	return fieldProblem(code, field, "Field "+strconv.Quote(field)+" must be a string, not "+got.String()+".")
}
