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

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// Version is the envelope version this package writes and the only one it reads.
const Version = 1

// MaxRequestSize bounds an encoded request. A real request is ~250 bytes; the
// bound keeps hostile payloads out of the decoder.
const MaxRequestSize = 64 << 10

// maxCurrencyLen bounds the currency field. Unknown but well-formed codes are
// a business rejection; anything longer or with control characters is poison,
// so that it never reaches the database as text.
const maxCurrencyLen = 32

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
	fieldReference = wire.FieldReference
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

// envelopeFields are every key an envelope of any kind may carry, in the
// order their values are checked.
var envelopeFields = []string{fieldVersion, fieldKind, fieldID, fieldAttempt, fieldFrom, fieldTo, fieldAccount,
	fieldHoldID, fieldTransferID, fieldAmount, fieldCurrency, fieldTimeout, fieldMetadata, fieldReference}

// Indexes into envelopeFields.
const (
	iVersion = iota
	iKind
	iID
	iAttempt
	iFrom
	iTo
	iAccount
	iHoldID
	iTransferID
	iAmount
	iCurrency
	iTimeout
	iMetadata
	iReference
	nEnvelopeFields
)

var envelopeReader = wire.Reader{Names: envelopeFields, KeepUnknown: true}

// DecodeRequest reads a request envelope strictly, with the reader the
// gateway reads HTTP bodies with: one JSON object of string fields (and
// the numbers v and timeout_seconds, and the metadata object), no unknown
// or duplicate fields, nothing after it, at most MaxRequestSize bytes. The
// error, when not nil, is a *DecodeError. A request that decodes may still
// break a business rule (negative amount, same accounts, unknown
// currency): that is for the store to reject, with an outcome, not for the
// decoder. Metadata and a reference beyond their limits are poison, as an
// HTTP body with them is refused whole.
func DecodeRequest(data []byte) (transfer.Request, error) {
	var r transfer.Request
	if len(data) > MaxRequestSize {
		return r, poison(ReasonPayloadTooLarge, "%d bytes, at most %d", len(data), MaxRequestSize)
	}
	var vals [nEnvelopeFields]wire.Value
	unknown, werr := envelopeReader.Read(data, vals[:])
	if werr != nil {
		switch werr.Kind {
		case wire.Duplicate:
			return r, poison(ReasonDuplicateField, "field %q appears twice", truncate(werr.Field))
		case wire.Nested:
			return r, poison(ReasonInvalidFieldType, "field %q must be a scalar", truncate(werr.Field))
		case wire.BadMetadata:
			return r, poison(ReasonInvalidMetadata, "%s", werr.Detail)
		}
		return r, poison(ReasonMalformedJSON, "%s", werr.Detail)
	}

	v := vals[iVersion]
	if v.Kind == wire.Absent {
		return r, poison(ReasonMissingVersion, "field v is required")
	}
	if v.Kind != wire.Number || string(v.Text) != "1" {
		return r, poison(ReasonUnsupportedVersion, "v must be 1, got %s", describe(v))
	}

	kind, derr := stringField(vals[iKind], fieldKind)
	if derr != nil {
		return r, derr
	}
	r.Kind = transfer.Kind(kind)
	allowed, known := kindFields[r.Kind]
	if !known {
		return r, poison(ReasonInvalidKind, "kind must be transfer, deposit, withdrawal, hold, post, void or reversal, got %q", truncate(kind))
	}
	for i := range vals {
		if vals[i].Kind != wire.Absent && allowed&(1<<i) == 0 {
			unknown = append(unknown, envelopeFields[i])
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return r, poison(ReasonUnknownField, "unknown field %q for kind %s", truncate(unknown[0]), r.Kind)
	}
	for i, val := range vals {
		if i == iVersion || i == iTimeout || i == iMetadata || val.Kind == wire.Absent || val.Kind == wire.String {
			continue
		}
		reason := ReasonInvalidFieldType
		if i == iAmount {
			// A number amount would be read through a float by most
			// producers' JSON libraries; refuse it outright.
			reason = ReasonInvalidAmount
		}
		return r, poison(reason, "field %s must be a string, got %s", envelopeFields[i], describe(val))
	}

	id := string(vals[iID].Text)
	var ok bool
	if r.ID, ok = transfer.ParseID(id); !ok || r.ID == uuid.Nil {
		return r, poison(ReasonInvalidID, "id must be a non-nil uuid, got %q", truncate(id))
	}
	if vals[iAttempt].Kind == wire.String {
		attempt := string(vals[iAttempt].Text)
		if r.Attempt, ok = transfer.ParseID(attempt); !ok || r.Attempt == uuid.Nil {
			return r, poison(ReasonInvalidAttempt, "attempt must be a non-nil uuid, got %q", truncate(attempt))
		}
	}
	account := func(i int) (uuid.UUID, *DecodeError) {
		return optionalID(vals[i], envelopeFields[i], ReasonInvalidAccountID)
	}
	switch r.Kind {
	case transfer.KindTransfer:
		if r.From, derr = account(iFrom); derr != nil {
			return r, derr
		}
		if r.To, derr = account(iTo); derr != nil {
			return r, derr
		}
	case transfer.KindDeposit:
		if r.To, derr = account(iAccount); derr != nil {
			return r, derr
		}
	case transfer.KindWithdrawal:
		if r.From, derr = account(iAccount); derr != nil {
			return r, derr
		}
	default:
		if derr := decodeHoldFields(&vals, &r, account); derr != nil {
			return r, derr
		}
		if derr := decodeLabels(&vals, &r); derr != nil {
			return r, derr
		}
		return r, nil
	}

	amount := string(vals[iAmount].Text)
	d, err := transfer.ParseAmount(amount)
	if err != nil {
		return r, poison(ReasonInvalidAmount, "amount %q: %v", truncate(amount), err)
	}
	r.Amount = d
	if r.Currency, derr = currencyField(vals[iCurrency]); derr != nil {
		return r, derr
	}
	if derr := decodeLabels(&vals, &r); derr != nil {
		return r, derr
	}
	return r, nil
}

// decodeLabels reads the optional metadata and reference, which every kind
// may carry, and checks them with the domain's limits.
func decodeLabels(vals *[nEnvelopeFields]wire.Value, r *transfer.Request) *DecodeError {
	var err *wire.LabelError
	if r.Metadata, r.Reference, err = wire.Labels(vals[iMetadata], vals[iReference]); err != nil {
		reason := ReasonInvalidMetadata
		if err.Code == transfer.CodeInvalidReference {
			reason = ReasonInvalidReference
		}
		return poison(reason, "%s", err.Err.Detail)
	}
	return nil
}

// optionalID reads an id field that names an account, hold or transfer:
// absent or "" is uuid.Nil, a business rule (an *_is_empty code) for the
// store; anything but a uuid is poison with reason.
func optionalID(v wire.Value, name string, reason Reason) (uuid.UUID, *DecodeError) {
	if len(v.Text) == 0 {
		return uuid.Nil, nil
	}
	u, ok := transfer.ParseID(v.Text)
	if !ok {
		return uuid.Nil, poison(reason, "%s must be a uuid, got %q", name, truncate(string(v.Text)))
	}
	return u, nil
}

// currencyField reads the currency. Unknown but well-formed codes are a
// business rejection; anything longer or with control characters is
// poison, so that it never reaches the database as text.
func currencyField(v wire.Value) (string, *DecodeError) {
	currency := string(v.Text)
	if len(currency) > maxCurrencyLen || !printableASCII(currency) {
		return "", poison(ReasonInvalidCurrency, "currency must be at most %d printable ASCII characters", maxCurrencyLen)
	}
	return currency, nil
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

func stringField(v wire.Value, name string) (string, *DecodeError) {
	switch v.Kind {
	case wire.Absent:
		return "", nil
	case wire.String:
		return string(v.Text), nil
	}
	return "", poison(ReasonInvalidFieldType, "field %s must be a string, got %s", name, describe(v))
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
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
