package natsbus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
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
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // Marshal of a string cannot fail.
	b.Write(enc)
}

// DecodeRequest reads a request envelope strictly: one JSON object of string
// fields (and the number v), no unknown or duplicate fields, nothing after
// it, at most MaxRequestSize bytes. The error, when not nil, is a
// *DecodeError. A request that decodes may still break a business rule
// (negative amount, same accounts, unknown currency): that is for the store
// to reject, with an outcome, not for the decoder.
func DecodeRequest(data []byte) (transfer.Request, error) {
	var r transfer.Request
	if len(data) > MaxRequestSize {
		return r, poison(ReasonPayloadTooLarge, "%d bytes, at most %d", len(data), MaxRequestSize)
	}
	fields, derr := readFlatObject(data)
	if derr != nil {
		return r, derr
	}

	v, ok := fields[fieldVersion]
	if !ok {
		return r, poison(ReasonMissingVersion, "field v is required")
	}
	if n, isNum := v.(json.Number); !isNum || string(n) != "1" {
		return r, poison(ReasonUnsupportedVersion, "v must be 1, got %s", describe(v))
	}

	kind, derr := stringField(fields, fieldKind)
	if derr != nil {
		return r, derr
	}
	r.Kind = transfer.Kind(kind)
	allowed := map[string]bool{fieldVersion: true, fieldKind: true, fieldID: true, fieldAmount: true, fieldCurrency: true, fieldAttempt: true}
	switch r.Kind {
	case transfer.KindTransfer:
		allowed[fieldFrom], allowed[fieldTo] = true, true
	case transfer.KindDeposit, transfer.KindWithdrawal:
		allowed[fieldAccount] = true
	case transfer.KindHold, transfer.KindPost, transfer.KindVoid, transfer.KindReversal:
		allowed = holdFields[r.Kind]
	default:
		return r, poison(ReasonInvalidKind, "kind must be transfer, deposit, withdrawal, hold, post, void or reversal, got %q", truncate(kind))
	}
	if unknown := unknownFields(fields, allowed); len(unknown) > 0 {
		return r, poison(ReasonUnknownField, "unknown field %q for kind %s", truncate(unknown[0]), r.Kind)
	}
	for name, val := range fields {
		if name == fieldVersion || name == fieldTimeout {
			continue
		}
		if _, isString := val.(string); !isString {
			reason := ReasonInvalidFieldType
			if name == fieldAmount {
				// A number amount would be read through a float by most
				// producers' JSON libraries; refuse it outright.
				reason = ReasonInvalidAmount
			}
			return r, poison(reason, "field %s must be a string, got %s", name, describe(val))
		}
	}

	id, _ := fields[fieldID].(string)
	if r.ID, ok = parseUUID(id); !ok || r.ID == uuid.Nil {
		return r, poison(ReasonInvalidID, "id must be a non-nil uuid, got %q", truncate(id))
	}
	if attempt, present := fields[fieldAttempt].(string); present {
		if r.Attempt, ok = parseUUID(attempt); !ok || r.Attempt == uuid.Nil {
			return r, poison(ReasonInvalidAttempt, "attempt must be a non-nil uuid, got %q", truncate(attempt))
		}
	}
	account := func(name string) (uuid.UUID, *DecodeError) {
		s, _ := fields[name].(string)
		if s == "" {
			return uuid.Nil, nil // absent: a business rule (account id is empty)
		}
		u, ok := parseUUID(s)
		if !ok {
			return uuid.Nil, poison(ReasonInvalidAccountID, "%s must be a uuid, got %q", name, truncate(s))
		}
		return u, nil
	}
	if r.Kind != transfer.KindTransfer && r.Kind != transfer.KindDeposit && r.Kind != transfer.KindWithdrawal {
		if derr := decodeHoldFields(fields, &r, account); derr != nil {
			return r, derr
		}
		return r, nil
	}
	switch r.Kind {
	case transfer.KindTransfer:
		if r.From, derr = account(fieldFrom); derr != nil {
			return r, derr
		}
		if r.To, derr = account(fieldTo); derr != nil {
			return r, derr
		}
	case transfer.KindDeposit:
		if r.To, derr = account(fieldAccount); derr != nil {
			return r, derr
		}
	case transfer.KindWithdrawal:
		if r.From, derr = account(fieldAccount); derr != nil {
			return r, derr
		}
	}

	amount, _ := fields[fieldAmount].(string)
	d, err := transfer.ParseAmount(amount)
	if err != nil {
		return r, poison(ReasonInvalidAmount, "amount %q: %v", truncate(amount), err)
	}
	r.Amount = d

	currency, _ := fields[fieldCurrency].(string)
	if len(currency) > maxCurrencyLen || !printableASCII(currency) {
		return r, poison(ReasonInvalidCurrency, "currency must be at most %d printable ASCII characters", maxCurrencyLen)
	}
	r.Currency = currency
	return r, nil
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

// readFlatObject reads one JSON object whose values are scalars, refusing
// duplicate keys, nested values and trailing data.
func readFlatObject(data []byte) (map[string]any, *DecodeError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, poison(ReasonMalformedJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, poison(ReasonMalformedJSON, "payload must be a JSON object")
	}
	fields := make(map[string]any, 8)
	for dec.More() {
		tok, err = dec.Token()
		if err != nil {
			return nil, poison(ReasonMalformedJSON, "%v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, poison(ReasonMalformedJSON, "object key expected")
		}
		if _, dup := fields[key]; dup {
			return nil, poison(ReasonDuplicateField, "field %q appears twice", truncate(key))
		}
		val, err := dec.Token()
		if err != nil {
			return nil, poison(ReasonMalformedJSON, "%v", err)
		}
		if _, nested := val.(json.Delim); nested {
			return nil, poison(ReasonInvalidFieldType, "field %q must be a scalar", truncate(key))
		}
		fields[key] = val
	}
	if tok, err = dec.Token(); err != nil {
		return nil, poison(ReasonMalformedJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '}' {
		return nil, poison(ReasonMalformedJSON, "object not closed")
	}
	if _, err = dec.Token(); !errors.Is(err, io.EOF) {
		return nil, poison(ReasonMalformedJSON, "data after the object")
	}
	return fields, nil
}

func stringField(fields map[string]any, name string) (string, *DecodeError) {
	v, ok := fields[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", poison(ReasonInvalidFieldType, "field %s must be a string, got %s", name, describe(v))
	}
	return s, nil
}

func unknownFields(fields map[string]any, allowed map[string]bool) []string {
	var out []string
	for k := range fields {
		if !allowed[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// parseUUID accepts the 36-character hyphenated form in any case; the
// other forms uuid.Parse knows (braces, urn:) are not part of the contract.
func parseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + truncate(string(x))
	case string:
		return "the string " + fmt.Sprintf("%q", truncate(x))
	default:
		return fmt.Sprintf("%T", v)
	}
}

// truncate keeps details (logged and put in headers) short whatever the input.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "..."
}
