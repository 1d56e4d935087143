package wire

import (
	"strconv"
	"time"

	"github.com/wallet/wallet/internal/transfer"
)

// FieldReference is the key of a request's reference.
const FieldReference = "reference"

// LabelError says why a request's metadata or reference was refused: Code
// is transfer.CodeInvalidMetadata or transfer.CodeInvalidReference, Field
// the key.
type LabelError struct {
	Code  transfer.Code
	Field string
	Err   *transfer.Error
}

func (e *LabelError) Error() string { return e.Err.Error() }

// Labels reads a request's optional metadata (an object of strings) and
// reference (a string) and checks them with the domain's limits. Absent
// and null are none; an empty object is no metadata; an empty reference is
// refused, since a reference is 1 to 128 characters.
func Labels(meta, ref Value) (map[string]string, string, *LabelError) {
	var m map[string]string
	switch meta.Kind {
	case Absent, Null:
	case Object:
		if e := transfer.CheckMetadata(meta.Meta); e != nil {
			return nil, "", &LabelError{Code: e.Code, Field: FieldMetadata, Err: e}
		}
		m = meta.Meta
	default:
		return nil, "", &LabelError{Code: transfer.CodeInvalidMetadata, Field: FieldMetadata,
			Err: &transfer.Error{Code: transfer.CodeInvalidMetadata, Detail: "metadata must be an object of strings, not " + meta.Kind.String()}}
	}
	var s string
	switch ref.Kind {
	case Absent, Null:
	case String:
		s = string(ref.Text)
		e := transfer.CheckReference(s)
		if e == nil && s == "" {
			e = &transfer.Error{Code: transfer.CodeInvalidReference, Detail: "reference must be 1 to 128 printable characters"}
		}
		if e != nil {
			return nil, "", &LabelError{Code: e.Code, Field: FieldReference, Err: e}
		}
	default:
		return nil, "", &LabelError{Code: transfer.CodeInvalidReference, Field: FieldReference,
			Err: &transfer.Error{Code: transfer.CodeInvalidReference, Detail: "reference must be a string, not " + ref.Kind.String()}}
	}
	return m, s, nil
}

// maxTimeoutDigits bounds timeout_seconds' digits so that any accepted
// value converts to a time.Duration without overflow; its range (0 to 30
// days) is the domain's rule.
const maxTimeoutDigits = 9

// Seconds reads a hold's timeout_seconds from a number's text: a whole
// number (no fraction, no exponent) of at most 9 digits, maybe negative
// (which the domain rejects).
func Seconds(text []byte) (time.Duration, bool) {
	digits := text
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > maxTimeoutDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}
