package natsbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// Version is the envelope version this package writes and the only one it reads.
const Version = 1

// MaxRequestSize bounds an encoded request. A real request is ~250 bytes; the
// bound keeps hostile payloads out of the decoder.
const MaxRequestSize = 64 << 10

// Reason is a stable snake_case code saying why a message was dead-lettered.
type Reason string

// Dead-letter reasons; docs/messaging.md lists them for producers.
const (
	ReasonPayloadTooLarge    Reason = "payload_too_large"
	ReasonMalformedJSON      Reason = "malformed_json"
	ReasonDuplicateField     Reason = "duplicate_field"
	ReasonUnknownField       Reason = "unknown_field"
	ReasonInvalidFieldType   Reason = "invalid_field_type"
	ReasonMissingVersion     Reason = "missing_version"
	ReasonUnsupportedVersion Reason = "unsupported_version"
	ReasonInvalidID          Reason = "invalid_id"
	ReasonInvalidKind        Reason = "invalid_kind"
	ReasonInvalidAccountID   Reason = "invalid_account_id"
	ReasonInvalidAttempt     Reason = "invalid_attempt"
	ReasonInvalidAmount      Reason = "invalid_amount"
	ReasonInvalidCurrency    Reason = "invalid_currency"
	ReasonInvalidSubject     Reason = "invalid_subject"
	ReasonSubjectMismatch    Reason = "subject_mismatch"
	ReasonInvalidHoldID      Reason = "invalid_hold_id"
	ReasonInvalidTransferID  Reason = "invalid_transfer_id"
	ReasonInvalidTimeout     Reason = "invalid_timeout"
	ReasonInvalidMetadata    Reason = "invalid_metadata"
	ReasonInvalidReference   Reason = "invalid_reference"
)

// DecodeError says why a payload is not a usable request. Such a message is
// poison: it is dead-lettered, never guessed at.
type DecodeError struct {
	Reason Reason
	Detail string
}

func (e *DecodeError) Error() string {
	return "decode request: " + string(e.Reason) + ": " + e.Detail
}

func poison(reason Reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Field names of the request envelope, the same as the HTTP API's.
const (
	fieldVersion  = "v"
	fieldKind     = "kind"
	fieldID       = "id"
	fieldFrom     = "from_account_id"
	fieldTo       = "to_account_id"
	fieldAccount  = "account_id"
	fieldAmount   = "amount"
	fieldCurrency = "currency"
	fieldAttempt  = "attempt"
	// fieldMetadata is the one field whose value is an object.
	fieldMetadata  = wire.FieldMetadata
	fieldReference = "reference"
)

// EncodeRequest writes r as a version 1 envelope. The amount is written as
// r.Amount.String(), which DecodeRequest reads back exactly; AcceptedAt is
// not carried (the stream's timestamp is the acceptance time).
func EncodeRequest(r transfer.Request) ([]byte, error) {
	if !r.Kind.Valid() {
		return nil, fmt.Errorf("encode request: kind %q", r.Kind)
	}
	var b bytes.Buffer
	b.Grow(256)
	b.WriteString(`{"v":1,"kind":`)
	writeJSONString(&b, string(r.Kind))
	b.WriteString(`,"id":"`)
	b.WriteString(r.ID.String())
	b.WriteByte('"')
	writeAccount := func(name string, id uuid.UUID) {
		if id == uuid.Nil {
			return
		}
		b.WriteString(`,"` + name + `":"`)
		b.WriteString(id.String())
		b.WriteByte('"')
	}
	switch r.Kind {
	case transfer.KindTransfer:
		writeAccount(fieldFrom, r.From)
		writeAccount(fieldTo, r.To)
	case transfer.KindDeposit:
		writeAccount(fieldAccount, r.To)
	case transfer.KindWithdrawal:
		writeAccount(fieldAccount, r.From)
	case transfer.KindHold, transfer.KindPost, transfer.KindVoid, transfer.KindReversal:
		if err := encodeHoldFields(&b, r, writeAccount); err != nil {
			return nil, err
		}
		writeLabels(&b, r)
		b.WriteByte('}')
		return b.Bytes(), nil
	}
	b.WriteString(`,"amount":"`)
	b.WriteString(r.Amount.String())
	b.WriteString(`","currency":`)
	writeJSONString(&b, r.Currency)
	if r.Attempt != uuid.Nil {
		b.WriteString(`,"attempt":"`)
		b.WriteString(r.Attempt.String())
		b.WriteByte('"')
	}
	writeLabels(&b, r)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// RequestMsg builds the message for r: its subject, the Nats-Msg-Id
// header (RequestMsgID) and, when traceID is not empty, the trace header.
func RequestMsg(r transfer.Request, traceID string) (*nats.Msg, error) {
	if r.ID == uuid.Nil {
		return nil, errors.New("request msg: request has no id")
	}
	account := r.PartitionAccount()
	if account == uuid.Nil {
		return nil, errors.New("request msg: request has no partition account")
	}
	data, err := EncodeRequest(r)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(RequestSubject(account, r.ID))
	msg.Data = data
	msg.Header.Set(HeaderMsgID, RequestMsgID(r))
	if traceID != "" {
		msg.Header.Set(HeaderTraceID, traceID)
	}
	return msg, nil
}

// RequestMsgID is the message id JetStream deduplicates r by: its id, or
// for a positive-idempotent attempt "<id>.<attempt>", so that a retry of a
// rejected id within the dedupe window is stored, not dropped as a
// duplicate of the attempt it retries.
func RequestMsgID(r transfer.Request) string {
	if r.Attempt != uuid.Nil {
		return r.ID.String() + "." + r.Attempt.String()
	}
	return r.ID.String()
}

// ResubmitMsgID is the message id of a request whose own id is taken, within
// the dedupe window, by a message that is not a valid request (a producer's
// malformed message, which the workers dead-letter): published again under
// its own id, the request would be dropped as a duplicate and never applied.
// The database still applies each request id at most once.
func ResubmitMsgID(id uuid.UUID) string { return id.String() + ".resubmit" }

// writeLabels writes the metadata (keys sorted, so one request always
// encodes to the same bytes) and the reference, when given.
func writeLabels(b *bytes.Buffer, r transfer.Request) {
	if len(r.Metadata) > 0 {
		keys := make([]string, 0, len(r.Metadata))
		for k := range r.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`,"metadata":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			writeJSONString(b, r.Metadata[k])
		}
		b.WriteByte('}')
	}
	if r.Reference != "" {
		b.WriteString(`,"reference":`)
		writeJSONString(b, r.Reference)
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // Marshal of a string cannot fail.
	b.Write(enc)
}

// DecodeRequest reads a request envelope strictly, with the reader the
// gateway reads HTTP bodies with (wire.Envelope): one JSON object of string
// fields (and the numbers v and timeout_seconds, and the metadata object),
// no unknown or duplicate fields, nothing after it, at most MaxRequestSize
// bytes. The error, when not nil, is a *DecodeError. A request that decodes
// may still break a business rule (negative amount, same accounts, unknown
// currency): that is for the store to reject, with an outcome, not for the
// decoder. Metadata and a reference beyond their limits are poison, as an
// HTTP body with them is refused whole.
func DecodeRequest(data []byte) (transfer.Request, error) {
	if len(data) > MaxRequestSize {
		return transfer.Request{}, poison(ReasonPayloadTooLarge, "%d bytes, at most %d", len(data), MaxRequestSize)
	}
	r, err := wire.Envelope.Read(data)
	if err != nil {
		return r, poisonOf(r.Kind, err)
	}
	return r, nil
}

// poisonOf words why an envelope could not be read as a dead-letter reason
// and detail. kind is the envelope's, when it was read.
func poisonOf(kind transfer.Kind, err *wire.Error) *DecodeError {
	field := truncate(err.Field)
	switch err.Kind {
	case wire.Duplicate:
		return poison(ReasonDuplicateField, "field %q appears twice", field)
	case wire.Nested:
		return poison(ReasonInvalidFieldType, "field %q must be a scalar", field)
	case wire.BadMetadata:
		return poison(ReasonInvalidMetadata, "%s", err.Detail)
	case wire.NoVersion:
		return poison(ReasonMissingVersion, "field v is required")
	case wire.BadVersion:
		return poison(ReasonUnsupportedVersion, "v must be 1, got %s", describe(err.Value))
	case wire.BadKind:
		return poison(ReasonInvalidKind, "kind must be transfer, deposit, withdrawal, hold, post, void or reversal, got %q", truncate(string(err.Value.Text)))
	case wire.Unknown:
		return poison(ReasonUnknownField, "unknown field %q for kind %s", field, kind)
	case wire.WrongType:
		switch field {
		case fieldTimeout:
			return poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", describe(err.Value))
		case fieldAmount:
			// A number amount would be read through a float by most
			// producers' JSON libraries; refuse it outright.
			return poison(ReasonInvalidAmount, "field %s must be a string, got %s", field, describe(err.Value))
		}
		return poison(ReasonInvalidFieldType, "field %s must be a string, got %s", field, describe(err.Value))
	case wire.Zero:
		whole := "remainder"
		if kind == transfer.KindPost {
			whole = "hold"
		}
		return poison(ReasonInvalidAmount, "amount %q: leave amount out for the whole %s, never 0", truncate(string(err.Value.Text)), whole)
	case wire.Invalid:
		text := truncate(string(err.Value.Text))
		switch field {
		case fieldID:
			return poison(ReasonInvalidID, "id must be a non-nil uuid, got %q", text)
		case fieldAttempt:
			return poison(ReasonInvalidAttempt, "attempt must be a non-nil uuid, got %q", text)
		case fieldHoldID:
			return poison(ReasonInvalidHoldID, "%s must be a uuid, got %q", field, text)
		case fieldTransferID:
			return poison(ReasonInvalidTransferID, "%s must be a uuid, got %q", field, text)
		case fieldFrom, fieldTo, fieldAccount:
			return poison(ReasonInvalidAccountID, "%s must be a uuid, got %q", field, text)
		case fieldAmount:
			return poison(ReasonInvalidAmount, "amount %q: %v", text, err.Err)
		case fieldCurrency:
			return poison(ReasonInvalidCurrency, "currency must be at most %d printable ASCII characters", wire.MaxCurrencyLen)
		case fieldTimeout:
			return poison(ReasonInvalidTimeout, "timeout_seconds must be a whole number of seconds, got %s", text)
		case fieldReference:
			return poison(ReasonInvalidReference, "%s", err.Err.Detail)
		}
		return poison(ReasonInvalidMetadata, "%s", err.Err.Detail)
	}
	return poison(ReasonMalformedJSON, "%s", err.Detail)
}

// DecodeStoredRequest decodes a message as stored in the requests stream:
// its body must be a valid envelope and its subject must name the body's
// id and partition account. Anything else is poison, which the workers
// dead-letter and never apply; the error is a *DecodeError when the body
// or subject says why.
func DecodeStoredRequest(subject string, data []byte) (transfer.Request, error) {
	r, err := DecodeRequest(data)
	if err != nil {
		return r, err
	}
	s, err := CheckSubject(subject, r)
	if err == nil && r.Kind.NamesNoAccount() {
		r.Partition = s.Account
	}
	return r, err
}

// CheckSubject verifies that a request's stored subject names the request's
// own id and partition account, so a producer cannot file a request under
// another account's partition or another id. A post, void or reversal names
// no account in its body: any account passes here, and the store rejects
// the request (subject_account_mismatch) unless it is the hold's sender or
// the account the reversal debits.
func CheckSubject(subject string, r transfer.Request) (StoredSubject, error) {
	s, err := ParseStoredSubject(subject)
	if err != nil {
		return s, poison(ReasonInvalidSubject, "%v", err)
	}
	if s.ID != r.ID {
		return s, poison(ReasonSubjectMismatch, "subject names request %s, body %s", s.ID, r.ID)
	}
	if r.Kind.NamesNoAccount() {
		// The body names no account: the subject's is taken as given, and
		// the store refuses the request when it is not the hold's sender
		// or the account the reversal debits.
		r.Partition = s.Account
	}
	if s.Account != r.PartitionAccount() || s.Account == uuid.Nil {
		return s, poison(ReasonSubjectMismatch, "subject names account %s, body's %s account is %s", s.Account, r.Kind, r.PartitionAccount())
	}
	return s, nil
}

func describe(v wire.Value) string {
	switch v.Kind {
	case wire.Number:
		return "the number " + truncate(string(v.Text))
	case wire.String:
		return "the string " + fmt.Sprintf("%q", truncate(string(v.Text)))
	}
	return v.Kind.String()
}

// truncate keeps details (logged and put in headers) short whatever the input.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "..."
}

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
