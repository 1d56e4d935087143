package natsbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// StatusPending is the status of a request accepted but not yet decided. It
// never appears on the results stream; the gateway uses it in its responses.
const StatusPending transfer.Status = "pending"

// MaxResultSize bounds a result accepted by DecodeResult.
const MaxResultSize = 64 << 10

// Result is the outcome of one request as published on ResultSubject(id),
// and the body of the gateway's GET /v1/transfers/{id}. Field names are the
// HTTP API's. A transfer names from_account_id and to_account_id; a deposit
// or withdrawal names account_id; a hold, post, void or reversal names the
// accounts it moves money between (a reversal of a deposit or withdrawal
// only one of them), a post or void its hold_id, a reversal what it
// reverses.
type Result struct {
	V             int             `json:"v"`
	ID            uuid.UUID       `json:"id"`
	Kind          transfer.Kind   `json:"kind"`
	Status        transfer.Status `json:"status"`
	Reason        transfer.Code   `json:"reason,omitempty"`
	FromAccountID uuid.UUID       `json:"from_account_id,omitzero"`
	ToAccountID   uuid.UUID       `json:"to_account_id,omitzero"`
	AccountID     uuid.UUID       `json:"account_id,omitzero"`
	// Amount has the currency's precision ("100.10") when the currency is
	// known and that loses nothing; else it is the amount as requested.
	// A decided transfer's amount is always rounded, so an outcome always
	// has the precision; a conflict notice shows the conflicting request's
	// amount, which may carry more digits ("0.017397489" BTC).
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	// AcceptedAt is when JetStream stored the request (RFC 3339, UTC).
	AcceptedAt time.Time `json:"accepted_at"`
	// ProcessedAt is when the request was decided; zero while pending.
	ProcessedAt time.Time `json:"processed_at,omitzero"`
	// Attempt is the attempt that made the decision, for requests sent
	// with one (the 2020 API's retries); absent otherwise.
	Attempt uuid.UUID `json:"attempt,omitzero"`
	// HoldID is the hold a post or void settles; absent for other kinds.
	HoldID uuid.UUID `json:"hold_id,omitzero"`
	// Reverses is the request a reversal moves money back for; absent
	// for other kinds.
	Reverses uuid.UUID `json:"reverses,omitzero"`
	// Metadata and Reference are the request's, as sent; absent when it
	// had none. Metadata's keys are written in sorted order.
	Metadata  map[string]string `json:"metadata,omitempty"`
	Reference string            `json:"reference,omitempty"`
}

// ResultFromTransfer describes a decided transfer. Its amount is written by
// currencies.Format; a currency missing from the table (a rejected
// currency_not_supported request) keeps its amount as requested.
func ResultFromTransfer(t transfer.Transfer, currencies transfer.Currencies) Result {
	r := Result{
		V:           Version,
		ID:          t.ID,
		Kind:        t.Kind,
		Status:      t.Status,
		Reason:      t.Reason,
		Currency:    t.Currency,
		AcceptedAt:  t.AcceptedAt.UTC(),
		ProcessedAt: t.ProcessedAt.UTC(),
		Attempt:     t.Attempt,
		HoldID:      t.HoldID,
		Reverses:    t.Reverses,
		Metadata:    t.Metadata,
		Reference:   t.Reference,
	}
	r.setAccounts(t.Kind, t.From, t.To)
	r.Amount = currencies.Format(t.Amount, t.Currency)
	return r
}

// ConflictNotice describes a request that reused an id with other fields:
// rejected with transfer_id_conflict, carrying the conflicting request's
// own fields. It is published on ConflictSubject(id), never on the outcome
// subject, whose last message stays the id's real outcome.
func ConflictNotice(req transfer.Request, processedAt time.Time, currencies transfer.Currencies) Result {
	r := Result{
		V:           Version,
		ID:          req.ID,
		Kind:        req.Kind,
		Status:      transfer.StatusRejected,
		Reason:      transfer.CodeTransferIDConflict,
		Currency:    transfer.NormalizeCurrency(req.Currency),
		AcceptedAt:  req.AcceptedAt.UTC(),
		ProcessedAt: processedAt.UTC(),
		HoldID:      req.HoldID,
		Reverses:    req.Reverses,
		Metadata:    req.Metadata,
		Reference:   req.Reference,
	}
	r.setAccounts(req.Kind, req.From, req.To)
	r.Amount = currencies.Format(req.Amount, r.Currency)
	return r
}

func (r *Result) setAccounts(kind transfer.Kind, from, to uuid.UUID) {
	switch kind {
	case transfer.KindDeposit:
		r.AccountID = to
	case transfer.KindWithdrawal:
		r.AccountID = from
	default:
		r.FromAccountID, r.ToAccountID = from, to
	}
}

// EncodeResult writes r as JSON.
func EncodeResult(r Result) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return b, nil
}

// ErrInvalidResult is wrapped by DecodeResult's errors.
var ErrInvalidResult = errors.New("natsbus: invalid result")

// DecodeResult reads a result strictly: known fields only, one object,
// version 1.
func DecodeResult(data []byte) (Result, error) {
	var r Result
	if len(data) > MaxResultSize {
		return r, fmt.Errorf("%w: %d bytes", ErrInvalidResult, len(data))
	}
	// Duplicate keys are refused here too, so that two readers of one
	// result can never see different values.
	if _, derr := readResultKeys(data); derr != nil {
		return r, fmt.Errorf("%w: %s", ErrInvalidResult, derr.Detail)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalidResult, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Result{}, fmt.Errorf("%w: data after the object", ErrInvalidResult)
	}
	if r.V != Version {
		return Result{}, fmt.Errorf("%w: unsupported version %d", ErrInvalidResult, r.V)
	}
	if r.ID == uuid.Nil {
		return Result{}, fmt.Errorf("%w: no id", ErrInvalidResult)
	}
	return r, nil
}

// resultKeys reads a result's keys to refuse duplicates (and nested values
// but the metadata object).
var resultKeys = wire.Reader{Names: []string{wire.FieldMetadata}, KeepUnknown: true}

// readResultKeys checks a result object's top level for duplicate keys.
func readResultKeys(data []byte) (struct{}, *wire.Error) {
	var vals [1]wire.Value
	_, err := resultKeys.Read(data, vals[:])
	return struct{}{}, err
}
