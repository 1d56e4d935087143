package natsbus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

// Field names the envelopes of holds, posts, voids and reversals add, the
// same as the HTTP API's.
const (
	fieldHoldID     = "hold_id"
	fieldTransferID = "transfer_id"
	// fieldTimeout is the one field besides v that is a JSON number: a
	// whole number of seconds, not money.
	fieldTimeout = "timeout_seconds"
)

// maxTimeoutDigits bounds timeout_seconds' digits so that any accepted
// value converts to a time.Duration without overflow; values past 30 days
// are the store's to reject (invalid_timeout), with an outcome.
const maxTimeoutDigits = 9

// holdFields lists the fields each of the kinds added with holds may have.
// The 2020 API's attempt is not among them: only transfers are retried
// positive-idempotently.
var holdFields = map[transfer.Kind]map[string]bool{
	transfer.KindHold: {fieldVersion: true, fieldKind: true, fieldID: true, fieldFrom: true, fieldTo: true,
		fieldAmount: true, fieldCurrency: true, fieldTimeout: true},
	transfer.KindPost:     {fieldVersion: true, fieldKind: true, fieldID: true, fieldHoldID: true, fieldAmount: true},
	transfer.KindVoid:     {fieldVersion: true, fieldKind: true, fieldID: true, fieldHoldID: true},
	transfer.KindReversal: {fieldVersion: true, fieldKind: true, fieldID: true, fieldTransferID: true, fieldAmount: true},
}

// encodeHoldFields writes the fields after the id of a hold, post, void or
// reversal. An amount of zero on a post or reversal means "not given" and
// is left out, as the decoder requires.
func encodeHoldFields(b *bytes.Buffer, r transfer.Request, writeAccount func(string, uuid.UUID)) error {
	writeAmount := func() {
		b.WriteString(`,"amount":"`)
		b.WriteString(r.Amount.String())
		b.WriteByte('"')
	}
	switch r.Kind {
	case transfer.KindHold:
		writeAccount(fieldFrom, r.From)
		writeAccount(fieldTo, r.To)
		writeAmount()
		b.WriteString(`,"currency":`)
		writeJSONString(b, r.Currency)
		if r.Timeout != 0 {
			if r.Timeout%time.Second != 0 {
				return fmt.Errorf("encode request: timeout %s is not a whole number of seconds", r.Timeout)
			}
			b.WriteString(`,"timeout_seconds":`)
			b.WriteString(strconv.FormatInt(int64(r.Timeout/time.Second), 10))
		}
	case transfer.KindPost, transfer.KindVoid:
		writeAccount(fieldHoldID, r.HoldID)
		if r.Kind == transfer.KindPost && !r.Amount.IsZero() {
			writeAmount()
		}
	case transfer.KindReversal:
		writeAccount(fieldTransferID, r.Reverses)
		if !r.Amount.IsZero() {
			writeAmount()
		}
	}
	return nil
}

// decodeHoldFields reads the fields of a hold, post, void or reversal
// whose field names and types DecodeRequest has checked. A missing hold_id
// or transfer_id is a business rule (hold_id_is_empty,
// reversed_transfer_id_is_empty), as a missing account is; a malformed one
// is poison.
func decodeHoldFields(fields map[string]any, r *transfer.Request, account func(string) (uuid.UUID, *DecodeError)) *DecodeError {
	ref := func(name string, reason Reason) (uuid.UUID, *DecodeError) {
		s, _ := fields[name].(string)
		if s == "" {
			return uuid.Nil, nil
		}
		u, ok := parseUUID(s)
		if !ok {
			return uuid.Nil, poison(reason, "%s must be a uuid, got %q", name, truncate(s))
		}
		return u, nil
	}
	var derr *DecodeError
	switch r.Kind {
	case transfer.KindHold:
		if r.From, derr = account(fieldFrom); derr != nil {
			return derr
		}
		if r.To, derr = account(fieldTo); derr != nil {
			return derr
		}
		if derr = decodeAmount(fields, r, true); derr != nil {
			return derr
		}
		currency, _ := fields[fieldCurrency].(string)
		if len(currency) > maxCurrencyLen || !printableASCII(currency) {
			return poison(ReasonInvalidCurrency, "currency must be at most %d printable ASCII characters", maxCurrencyLen)
		}
		r.Currency = currency
		if v, ok := fields[fieldTimeout]; ok {
			if r.Timeout, derr = decodeTimeout(v); derr != nil {
				return derr
			}
		}
	case transfer.KindPost, transfer.KindVoid:
		if r.HoldID, derr = ref(fieldHoldID, ReasonInvalidHoldID); derr != nil {
			return derr
		}
		if r.Kind == transfer.KindPost {
			return decodeAmount(fields, r, false)
		}
	case transfer.KindReversal:
		if r.Reverses, derr = ref(fieldTransferID, ReasonInvalidTransferID); derr != nil {
			return derr
		}
		return decodeAmount(fields, r, false)
	}
	return nil
}

// decodeAmount reads the amount. When it is optional (a post or reversal)
// an absent amount is zero, "the whole hold" or "what is left", so an
// explicit zero, which would read the same, is refused: a producer meaning
// "nothing" must not be taken to mean "everything".
func decodeAmount(fields map[string]any, r *transfer.Request, required bool) *DecodeError {
	amount, present := fields[fieldAmount].(string)
	if !present && !required {
		return nil
	}
	d, err := transfer.ParseAmount(amount)
	if err != nil {
		return poison(ReasonInvalidAmount, "amount %q: %v", truncate(amount), err)
	}
	if !required && d.IsZero() {
		return poison(ReasonInvalidAmount, "amount %q: leave amount out for the whole %s, never 0", truncate(amount), wholeOf(r.Kind))
	}
	r.Amount = d
	return nil
}

func wholeOf(k transfer.Kind) string {
	if k == transfer.KindPost {
		return "hold"
	}
	return "remainder"
}

// decodeTimeout reads timeout_seconds: a JSON integer (no fraction, no
// exponent) of at most maxTimeoutDigits digits. Its range (0 to 30 days)
// is the domain's rule.
func decodeTimeout(v any) (time.Duration, *DecodeError) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", describe(v))
	}
	s := string(n)
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > maxTimeoutDigits {
		return 0, poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", truncate(s))
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", truncate(s))
		}
	}
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, poison(ReasonInvalidTimeout, "timeout_seconds %s: %v", truncate(s), err)
	}
	return time.Duration(secs) * time.Second, nil
}
