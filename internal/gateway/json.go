package gateway

import (
	"strconv"
	"strings"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

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
