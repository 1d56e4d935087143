package natsbus

import (
	"bytes"
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
