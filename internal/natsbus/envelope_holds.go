package natsbus

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
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

// kindFields has a bit (1<<i for envelopeFields[i]) for each field each
// kind may have. The 2020 API's attempt is only a transfer's: only
// transfers are retried positive-idempotently.
var kindFields = func() map[transfer.Kind]uint32 {
	bits := func(idx ...int) uint32 {
		var m uint32 = 1<<iVersion | 1<<iKind | 1<<iID | 1<<iMetadata | 1<<iReference
		for _, i := range idx {
			m |= 1 << i
		}
		return m
	}
	return map[transfer.Kind]uint32{
		transfer.KindTransfer:   bits(iFrom, iTo, iAmount, iCurrency, iAttempt),
		transfer.KindDeposit:    bits(iAccount, iAmount, iCurrency, iAttempt),
		transfer.KindWithdrawal: bits(iAccount, iAmount, iCurrency, iAttempt),
		transfer.KindHold:       bits(iFrom, iTo, iAmount, iCurrency, iTimeout),
		transfer.KindPost:       bits(iHoldID, iAmount),
		transfer.KindVoid:       bits(iHoldID),
		transfer.KindReversal:   bits(iTransferID, iAmount),
	}
}()

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
func decodeHoldFields(vals *[nEnvelopeFields]wire.Value, r *transfer.Request, account func(int) (uuid.UUID, *DecodeError)) *DecodeError {
	var derr *DecodeError
	switch r.Kind {
	case transfer.KindHold:
		if r.From, derr = account(iFrom); derr != nil {
			return derr
		}
		if r.To, derr = account(iTo); derr != nil {
			return derr
		}
		if derr = decodeAmount(vals[iAmount], r, true); derr != nil {
			return derr
		}
		if r.Currency, derr = currencyField(vals[iCurrency]); derr != nil {
			return derr
		}
		if v := vals[iTimeout]; v.Kind != wire.Absent {
			if r.Timeout, derr = decodeTimeout(v); derr != nil {
				return derr
			}
		}
	case transfer.KindPost, transfer.KindVoid:
		if r.HoldID, derr = optionalID(vals[iHoldID], fieldHoldID, ReasonInvalidHoldID); derr != nil {
			return derr
		}
		if r.Kind == transfer.KindPost {
			return decodeAmount(vals[iAmount], r, false)
		}
	case transfer.KindReversal:
		if r.Reverses, derr = optionalID(vals[iTransferID], fieldTransferID, ReasonInvalidTransferID); derr != nil {
			return derr
		}
		return decodeAmount(vals[iAmount], r, false)
	}
	return nil
}

// decodeAmount reads the amount. When it is optional (a post or reversal)
// an absent amount is zero, "the whole hold" or "what is left", so an
// explicit zero, which would read the same, is refused: a producer meaning
// "nothing" must not be taken to mean "everything".
func decodeAmount(v wire.Value, r *transfer.Request, required bool) *DecodeError {
	if v.Kind == wire.Absent && !required {
		return nil
	}
	amount := string(v.Text)
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
// exponent) of at most 9 digits. Its range (0 to 30 days) is the domain's
// rule.
func decodeTimeout(v wire.Value) (time.Duration, *DecodeError) {
	if v.Kind != wire.Number {
		return 0, poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", describe(v))
	}
	d, ok := wire.Seconds(v.Text)
	if !ok {
		return 0, poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", truncate(string(v.Text)))
	}
	return d, nil
}
