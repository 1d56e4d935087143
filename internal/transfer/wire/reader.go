package wire

import (
	"errors"
	"sort"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// It is written by hand rather than with encoding/json because
// encoding/json accepts duplicate keys and matches keys case-insensitively,
// and because this is the hot path of every submission: a body without
// escapes is read without allocating for its keys or values.

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of value.
const (
	Absent Kind = iota // the key did not appear
	String
	Number
	Null
	Bool
	Object
	Array
)

func (k Kind) String() string {
	return [...]string{"absent", "a string", "a number", "null", "a boolean", "an object", "an array"}[k]
}

// FieldMetadata is the one key whose value may be an object: a flat object
// of strings, read into Value.Meta.
const FieldMetadata = "metadata"

// Value is one decoded value: a string's content or a number's text. Text
// points into the body when the string had no escapes.
type Value struct {
	Kind Kind
	Text []byte
	// Meta holds the pairs of a metadata object (Kind Object); nil for an
	// empty object.
	Meta map[string]string
}

// ErrorKind says what is wrong with a body.
type ErrorKind uint8

// The kinds of Error.
const (
	// Malformed: not one JSON object, or not JSON.
	Malformed ErrorKind = iota + 1
	// Duplicate: a key appears twice (compared after unescaping).
	Duplicate
	// Unknown: a key the form does not have (for the Envelope, one its
	// kind does not carry).
	Unknown
	// Nested: a value is an object or array where only scalars are
	// allowed (only when unknown keys are kept: otherwise the reader stops
	// and leaves the value's Kind for the caller to report).
	Nested
	// BadMetadata: the metadata object holds something other than string
	// values under distinct keys.
	BadMetadata
	// WrongType: a value of a JSON type its field never takes.
	WrongType
	// Invalid: a value of the right type that is no valid value of its
	// field: an id that is not a UUID, an amount that does not parse,
	// metadata or a reference beyond the domain's limits (Err says which),
	// an envelope's currency or a timeout out of shape.
	Invalid
	// Missing: a required amount is absent or null.
	Missing
	// Zero: an optional amount (a post's, a reversal's) is given as zero,
	// which would read as not given.
	Zero
	// NoVersion, BadVersion, BadKind: an envelope without "v", with a "v"
	// other than 1, or with no kind of request it knows.
	NoVersion
	BadVersion
	BadKind
)

// Error is why a body could not be read. Field is the key concerned, for
// all kinds but Malformed; Detail is a sentence fragment for Malformed and
// BadMetadata; Value is the value at fault, when there is one; Err is the
// domain's error for an Invalid amount, metadata or reference.
type Error struct {
	Kind   ErrorKind
	Field  string
	Detail string
	Value  Value
	Err    *transfer.Error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Field + ": " + e.Err.Error()
	}
	return e.Field + ": " + e.Detail
}

// maxFields bounds a Reader's names, so seen keys fit in a bit set.
const maxFields = 32

// Reader reads bodies with the keys Names.
type Reader struct {
	// Names are the keys read; vals[i] receives the value of Names[i].
	Names []string
	// KeepUnknown makes Read return unknown keys (at most once each; a
	// repeated one is a Duplicate) instead of refusing the first, and
	// refuse nested values at once (Nested) instead of stopping at them.
	// The stream's decoder needs the whole body read before it can say
	// which keys its kind allows.
	KeepUnknown bool
}

// Read decodes body into vals. Without KeepUnknown a value that is an
// object or array (other than metadata's) stops the read at once, with
// no error: no field takes one, so the caller reports its type in field
// order.
func (rd *Reader) Read(body []byte, vals []Value) (unknown []string, _ *Error) {
	names := rd.Names
	if len(names) > maxFields || len(vals) != len(names) {
		// A programming error in a decoder's field table, never input.
		panic("wire: want one value per name and at most 32 names")
	}
	s := scanner{b: body}
	s.space()
	if s.i == len(s.b) {
		return nil, &Error{Kind: Malformed, Detail: "empty"}
	}
	if s.b[s.i] != '{' {
		return nil, &Error{Kind: Malformed, Detail: "not an object"}
	}
	s.i++
	var seen uint32
	s.space()
	if s.peek() == '}' {
		s.i++
		return nil, s.end()
	}
	for {
		s.space()
		if s.peek() != '"' {
			return unknown, s.syntax("expected a quoted key")
		}
		key, ok := s.str()
		if !ok {
			return unknown, s.syntax("invalid string")
		}
		idx := -1
		for i, n := range names {
			if n == string(key) {
				idx = i
				break
			}
		}
		var name string
		switch {
		case idx < 0 && !rd.KeepUnknown:
			return unknown, &Error{Kind: Unknown, Field: clip(string(key))}
		case idx < 0:
			name = string(key)
			for _, u := range unknown {
				if u == name {
					return unknown, &Error{Kind: Duplicate, Field: clip(name)}
				}
			}
			unknown = append(unknown, name)
		default:
			name = names[idx]
			if seen&(1<<idx) != 0 {
				return unknown, &Error{Kind: Duplicate, Field: name}
			}
			seen |= 1 << idx
		}
		s.space()
		if s.peek() != ':' {
			return unknown, s.syntax("expected ':' after a key")
		}
		s.i++
		s.space()
		var v Value
		if s.peek() == '{' && idx >= 0 && name == FieldMetadata {
			if v, ok = s.metadata(); !ok {
				if s.bad != nil {
					return unknown, s.bad
				}
				return unknown, s.syntax("invalid metadata object")
			}
		} else {
			if v, ok = s.value(); !ok {
				return unknown, s.syntax("invalid value")
			}
			if v.Kind == Object || v.Kind == Array {
				// Only recognised, not read: the scan cannot go on.
				if rd.KeepUnknown {
					return unknown, &Error{Kind: Nested, Field: clip(name)}
				}
				if idx >= 0 {
					vals[idx] = v //nolint:gosec // idx indexes names, and len(vals) == len(names) is checked on entry
				}
				return unknown, nil
			}
		}
		if idx >= 0 {
			vals[idx] = v //nolint:gosec // as above
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return unknown, s.end()
		default:
			return unknown, s.syntax("expected ',' or '}'")
		}
	}
}

// clip shortens a hostile key before it is echoed back.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

type scanner struct {
	b []byte
	i int
	// bad is set when a metadata object is well-formed JSON of the wrong
	// shape.
	bad *Error
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) end() *Error {
	s.space()
	if s.i != len(s.b) {
		return s.syntax("unexpected data after the JSON object")
	}
	return nil
}

// syntax reports malformed JSON where the scanner stands. Detail is
// "unexpected end of input (what)" or "at byte N: what".
func (s *scanner) syntax(what string) *Error {
	if s.i >= len(s.b) {
		return &Error{Kind: Malformed, Detail: "unexpected end of input (" + what + ")"}
	}
	return &Error{Kind: Malformed, Detail: "at byte " + strconv.Itoa(s.i) + ": " + what}
}

// value reads one value. Objects and arrays are only recognised, not read.
func (s *scanner) value() (Value, bool) {
	switch c := s.peek(); {
	case c == '"':
		t, ok := s.str()
		return Value{Kind: String, Text: t}, ok
	case c == '-' || (c >= '0' && c <= '9'):
		t, ok := s.number()
		return Value{Kind: Number, Text: t}, ok
	case c == '{':
		return Value{Kind: Object}, true
	case c == '[':
		return Value{Kind: Array}, true
	case c == 'n':
		return Value{Kind: Null}, s.literal("null")
	case c == 't':
		return Value{Kind: Bool}, s.literal("true")
	case c == 'f':
		return Value{Kind: Bool}, s.literal("false")
	}
	return Value{}, false
}

// metadata reads an object of string values. A value of another type or a
// repeated key sets s.bad and fails; so does a syntax error, without s.bad.
func (s *scanner) metadata() (Value, bool) {
	s.i++ // '{'
	v := Value{Kind: Object}
	s.space()
	if s.peek() == '}' {
		s.i++
		return v, true
	}
	for {
		s.space()
		if s.peek() != '"' {
			return v, false
		}
		key, ok := s.str()
		if !ok {
			return v, false
		}
		s.space()
		if s.peek() != ':' {
			return v, false
		}
		s.i++
		s.space()
		if s.peek() != '"' {
			val, ok := s.value()
			if ok {
				s.bad = &Error{Kind: BadMetadata, Field: FieldMetadata,
					Detail: "the value of " + strconv.Quote(clip(string(key))) + " is " + val.Kind.String() + ", not a string"}
			}
			return v, false
		}
		val, ok := s.str()
		if !ok {
			return v, false
		}
		if v.Meta == nil {
			v.Meta = make(map[string]string, 4)
		}
		k := string(key)
		if _, dup := v.Meta[k]; dup {
			s.bad = &Error{Kind: BadMetadata, Field: FieldMetadata, Detail: "key " + strconv.Quote(clip(k)) + " appears more than once"}
			return v, false
		}
		v.Meta[k] = string(val)
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return v, true
		default:
			return v, false
		}
	}
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number reads a number in JSON's grammar and returns its text.
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return nil, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// str reads a quoted string. Invalid UTF-8 and lone surrogates become
// U+FFFD, as encoding/json does. A string without escapes or non-ASCII
// bytes is returned as a slice of the body.
func (s *scanner) str() ([]byte, bool) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c >= utf8.RuneSelf:
			return s.slowStr(start)
		case c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *scanner) slowStr(start int) ([]byte, bool) {
	out := make([]byte, s.i-start, s.i-start+16)
	copy(out, s.b[start:s.i])
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, true
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s.b[s.i:])
			out = utf8.AppendRune(out, r)
			s.i += size
			continue
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		s.i++
		switch e := s.peek(); e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if s.i+6 < len(s.b) && s.b[s.i+1] == '\\' && s.b[s.i+2] == 'u' {
					save := s.i
					s.i += 2
					if low, ok := s.hex4(); ok {
						if dec := utf16.DecodeRune(r, low); dec != utf8.RuneError {
							r2 = dec
						} else {
							s.i = save
						}
					} else {
						s.i = save
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// hex4 reads the four hex digits after "\u"; s.i is at the 'u' and is left
// at the last digit.
func (s *scanner) hex4() (rune, bool) {
	if s.i+4 >= len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i+1 : s.i+5] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// Role says what a field of a request body fills in a transfer.Request.
type Role uint8

// The roles of fields.
const (
	RoleVersion   Role = iota + 1 // the envelope's "v"
	RoleKind                      // the envelope's "kind"
	RoleID                        // Request.ID
	RoleAttempt                   // Request.Attempt (the envelope's, for the 2020 API's retries)
	RoleFrom                      // Request.From
	RoleTo                        // Request.To
	RoleAccount                   // Request.To of a deposit, Request.From of a withdrawal
	RoleHoldID                    // Request.HoldID
	RoleReverses                  // Request.Reverses
	RoleAmount                    // Request.Amount
	RoleCurrency                  // Request.Currency
	RoleTimeout                   // Request.Timeout, a JSON number of seconds
	RoleMetadata                  // Request.Metadata, an object of strings
	RoleReference                 // Request.Reference
)

// Field is one key of a request body and what its value fills.
type Field struct {
	Name string
	Role Role
}

// Form is the shape of one request body: its keys, in the order their
// values are checked. The forms of the HTTP API and of the requests
// stream's envelope are declared below; a body read with one of them is a
// transfer.Request, or an *Error saying which field is at fault and why,
// which the gateway words as a problem and the stream as a dead-letter
// reason.
type Form struct {
	kind     transfer.Kind // "" for the envelope, which names its kind
	fields   []Field
	legacy   bool // the 2020 API: the amount may be a JSON number; absent is zero
	envelope bool
	reader   Reader
}

func newForm(kind transfer.Kind, legacy bool, fields ...Field) *Form {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return &Form{kind: kind, fields: fields, legacy: legacy, reader: Reader{Names: names}}
}

// Fields of the HTTP API and the envelope; the names are the same on both.
var (
	fieldID        = Field{"id", RoleID}
	fieldFrom      = Field{"from_account_id", RoleFrom}
	fieldTo        = Field{"to_account_id", RoleTo}
	fieldAccount   = Field{"account_id", RoleAccount}
	fieldAmount    = Field{"amount", RoleAmount}
	fieldCurrency  = Field{"currency", RoleCurrency}
	fieldTimeout   = Field{"timeout_seconds", RoleTimeout}
	fieldMetadata  = Field{FieldMetadata, RoleMetadata}
	fieldReference = Field{"reference", RoleReference}
)

// The HTTP API's request bodies. A post, void or reversal names its hold
// or transfer in the path, which the caller sets.
var (
	Transfer   = newForm(transfer.KindTransfer, false, fieldID, fieldFrom, fieldTo, fieldAmount, fieldCurrency, fieldMetadata, fieldReference)
	Deposit    = newForm(transfer.KindDeposit, false, fieldID, fieldAccount, fieldAmount, fieldCurrency, fieldMetadata, fieldReference)
	Withdrawal = newForm(transfer.KindWithdrawal, false, fieldID, fieldAccount, fieldAmount, fieldCurrency, fieldMetadata, fieldReference)
	Hold       = newForm(transfer.KindHold, false, fieldID, fieldFrom, fieldTo, fieldAmount, fieldCurrency, fieldTimeout, fieldMetadata, fieldReference)
	Post       = newForm(transfer.KindPost, false, fieldID, fieldAmount, fieldMetadata, fieldReference)
	Void       = newForm(transfer.KindVoid, false, fieldID, fieldMetadata, fieldReference)
	Reversal   = newForm(transfer.KindReversal, false, fieldID, fieldAmount, fieldMetadata, fieldReference)
	// Legacy is the original API's POST /transfers/. Its clients sent the
	// amount as a JSON number as often as a string; a number is read from
	// its text, exactly, never through a float. A missing amount is zero,
	// which the domain rejects as not positive, as the original did.
	Legacy = newForm(transfer.KindTransfer, true, fieldID, Field{"sender_account_id", RoleFrom},
		Field{"receiver_account_id", RoleTo}, fieldAmount, Field{"currency_code", RoleCurrency})
)

// Envelope is the requests stream's body: every key any kind may carry, in
// the order their values are checked. It names its kind; the keys a kind
// may carry are kindFields'.
var Envelope = func() *Form {
	f := newForm("", false, Field{"v", RoleVersion}, Field{"kind", RoleKind}, fieldID, Field{"attempt", RoleAttempt},
		fieldFrom, fieldTo, fieldAccount, Field{"hold_id", RoleHoldID}, Field{"transfer_id", RoleReverses},
		fieldAmount, fieldCurrency, fieldTimeout, fieldMetadata, fieldReference)
	f.envelope = true
	f.reader.KeepUnknown = true
	return f
}()

// Indexes into the Envelope's fields.
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
)

// kindFields has a bit (1<<i for the Envelope's field i) for each field
// each kind may carry. The 2020 API's attempt is only a transfer's, a
// deposit's and a withdrawal's: only they are retried
// positive-idempotently.
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

// MaxCurrencyLen bounds an envelope's currency. An unknown but well-formed
// code is a business rejection; anything longer or with control
// characters is refused, so that it never reaches the database as text.
const MaxCurrencyLen = 32

// maxTimeoutDigits bounds timeout_seconds' digits so that any accepted
// value converts to a time.Duration without overflow; its range (0 to 30
// days) is the domain's rule.
const maxTimeoutDigits = 9

// Read decodes body into a request of f's kind. It checks syntax only:
// JSON shape, UUIDs, amounts, and the metadata's and reference's limits (a
// body with bad ones is refused whole). The rules that need no database but
// are the domain's (ids present, accounts different, amount positive) are
// transfer.Request.Check's, so that every path judges a request by the
// same code.
//
// In an HTTP body, absent, null and "" ids are uuid.Nil, which the domain
// reports with its *_is_empty codes. The Envelope is stricter: its id (and
// an attempt) must be a non-nil UUID, every value but v, timeout_seconds
// and metadata a string, and its currency at most MaxCurrencyLen printable
// ASCII characters. On error the request holds what was read before it,
// and always the kind when it is known.
func (f *Form) Read(body []byte) (transfer.Request, *Error) {
	var buf [maxFields]Value
	vals := buf[:len(f.fields)]
	r := transfer.Request{Kind: f.kind}
	unknown, err := f.reader.Read(body, vals)
	if err != nil {
		return r, err
	}
	mask := ^uint32(0)
	if f.envelope {
		if mask, err = envelopeHead(&r, vals, unknown); err != nil {
			return r, err
		}
	}
	// The fields in order, each checked before the next is read.
	for i, fd := range f.fields {
		v := vals[i]
		if mask&(1<<i) == 0 {
			continue
		}
		switch fd.Role {
		case RoleVersion, RoleKind:
		case RoleID, RoleAttempt, RoleFrom, RoleTo, RoleAccount, RoleHoldID, RoleReverses:
			if fd.Role == RoleAttempt && v.Kind == Absent {
				continue
			}
			id, err := f.id(fd, v)
			if err != nil {
				return r, err
			}
			switch fd.Role {
			case RoleID:
				r.ID = id
			case RoleAttempt:
				r.Attempt = id
			case RoleFrom:
				r.From = id
			case RoleTo:
				r.To = id
			case RoleAccount:
				if r.Kind == transfer.KindDeposit {
					r.To = id
				} else {
					r.From = id
				}
			case RoleHoldID:
				r.HoldID = id
			case RoleReverses:
				r.Reverses = id
			}
		case RoleAmount:
			// A post's or reversal's amount is optional: absent is zero,
			// "the whole hold" or "what is left", so an explicit zero,
			// which would read the same, is refused: a client meaning
			// "nothing" must not be taken to mean "everything".
			optional := r.Kind == transfer.KindPost || r.Kind == transfer.KindReversal
			switch {
			case v.Kind == Absent || v.Kind == Null:
				if f.legacy {
					r.Amount = decimal.Zero
					continue
				}
				if optional {
					continue
				}
				if !f.envelope {
					return r, &Error{Kind: Missing, Field: fd.Name}
				}
				// An envelope's missing amount reads as "", refused below.
			case v.Kind == String, v.Kind == Number && f.legacy:
			default:
				return r, &Error{Kind: WrongType, Field: fd.Name, Value: v}
			}
			d, perr := transfer.ParseAmount(string(v.Text))
			if perr != nil {
				e := &transfer.Error{Code: transfer.CodeInvalidAmount, Detail: perr.Error()}
				errors.As(perr, &e)
				return r, &Error{Kind: Invalid, Field: fd.Name, Value: v, Err: e}
			}
			if optional && d.IsZero() {
				return r, &Error{Kind: Zero, Field: fd.Name, Value: v}
			}
			r.Amount = d
		case RoleCurrency:
			switch v.Kind {
			case String:
				if f.envelope && !printableASCII(v.Text, MaxCurrencyLen) {
					return r, &Error{Kind: Invalid, Field: fd.Name, Value: v}
				}
				r.Currency = string(v.Text)
			case Absent, Null:
			default:
				return r, &Error{Kind: WrongType, Field: fd.Name, Value: v}
			}
		case RoleTimeout:
			switch {
			case v.Kind == Absent, v.Kind == Null && !f.envelope:
			case v.Kind != Number:
				return r, &Error{Kind: WrongType, Field: fd.Name, Value: v}
			default:
				d, ok := seconds(v.Text)
				if !ok {
					return r, &Error{Kind: Invalid, Field: fd.Name, Value: v}
				}
				r.Timeout = d
			}
		case RoleMetadata:
			switch v.Kind {
			case Absent, Null:
			case Object:
				if e := transfer.CheckMetadata(v.Meta); e != nil {
					return r, &Error{Kind: Invalid, Field: fd.Name, Value: v, Err: e}
				}
				r.Metadata = v.Meta
			default:
				return r, &Error{Kind: Invalid, Field: fd.Name, Value: v, Err: &transfer.Error{Code: transfer.CodeInvalidMetadata,
					Detail: "metadata must be an object of strings, not " + v.Kind.String()}}
			}
		case RoleReference:
			// A reference is 1 to 128 characters: "" is refused, not none.
			var e *transfer.Error
			switch v.Kind {
			case Absent, Null:
			case String:
				if e = transfer.CheckReference(string(v.Text)); e == nil && len(v.Text) == 0 {
					e = &transfer.Error{Code: transfer.CodeInvalidReference, Detail: "reference must be 1 to 128 printable characters"}
				}
			default:
				e = &transfer.Error{Code: transfer.CodeInvalidReference, Detail: "reference must be a string, not " + v.Kind.String()}
			}
			if e != nil {
				return r, &Error{Kind: Invalid, Field: fd.Name, Value: v, Err: e}
			}
			r.Reference = string(v.Text)
		}
	}
	return r, nil
}

// id reads a UUID field with the service's one parser, transfer.ParseID.
// Absent, null and "" are uuid.Nil, except for an envelope's id and
// attempt, which must be present and not nil.
func (f *Form) id(fd Field, v Value) (uuid.UUID, *Error) {
	strict := f.envelope && (fd.Role == RoleID || fd.Role == RoleAttempt)
	switch v.Kind {
	case String:
	case Absent, Null:
		if !strict {
			return uuid.Nil, nil
		}
	default:
		return uuid.Nil, &Error{Kind: WrongType, Field: fd.Name, Value: v}
	}
	if len(v.Text) == 0 && !strict {
		return uuid.Nil, nil
	}
	id, ok := transfer.ParseID(v.Text)
	if !ok || (strict && id == uuid.Nil) {
		return uuid.Nil, &Error{Kind: Invalid, Field: fd.Name, Value: v}
	}
	return id, nil
}

// envelopeHead checks what an envelope has before its fields: the version,
// the kind, no key the kind does not carry (reported in sorted order, so a
// body is always refused for the same one) and a string for every value
// but v, timeout_seconds and metadata. It returns the kind's fields.
func envelopeHead(r *transfer.Request, vals []Value, unknown []string) (uint32, *Error) {
	switch v := vals[iVersion]; {
	case v.Kind == Absent:
		return 0, &Error{Kind: NoVersion, Field: Envelope.fields[iVersion].Name}
	case v.Kind != Number || string(v.Text) != "1":
		return 0, &Error{Kind: BadVersion, Field: Envelope.fields[iVersion].Name, Value: v}
	}
	k := vals[iKind]
	if k.Kind != Absent && k.Kind != String {
		return 0, &Error{Kind: WrongType, Field: Envelope.fields[iKind].Name, Value: k}
	}
	r.Kind = transfer.Kind(k.Text)
	allowed, known := kindFields[r.Kind]
	if !known {
		return 0, &Error{Kind: BadKind, Field: Envelope.fields[iKind].Name, Value: k}
	}
	for i := range vals {
		if vals[i].Kind != Absent && allowed&(1<<i) == 0 {
			unknown = append(unknown, Envelope.fields[i].Name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return 0, &Error{Kind: Unknown, Field: unknown[0]}
	}
	for i, v := range vals {
		if i == iVersion || i == iTimeout || i == iMetadata || v.Kind == Absent || v.Kind == String {
			continue
		}
		return 0, &Error{Kind: WrongType, Field: Envelope.fields[i].Name, Value: v}
	}
	return allowed, nil
}

// printableASCII reports whether s is at most limit printable ASCII
// characters.
func printableASCII(s []byte, limit int) bool {
	if len(s) > limit {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// seconds reads a timeout_seconds number's text: a whole number (no
// fraction, no exponent) of at most 9 digits, maybe negative (which the
// domain rejects).
func seconds(text []byte) (time.Duration, bool) {
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
