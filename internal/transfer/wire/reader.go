package wire

import (
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

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

// ErrorKind says what is wrong with a body as a whole.
type ErrorKind uint8

// The kinds of Error.
const (
	// Malformed: not one JSON object, or not JSON.
	Malformed ErrorKind = iota + 1
	// Duplicate: a key appears twice (compared after unescaping).
	Duplicate
	// Unknown: a key the reader was not given (only when unknown keys are
	// not kept).
	Unknown
	// Nested: a value is an object or array where only scalars are
	// allowed (only when unknown keys are kept: otherwise the reader stops
	// and leaves the value's Kind for the caller to report).
	Nested
	// BadMetadata: the metadata object holds something other than string
	// values under distinct keys.
	BadMetadata
)

// Error is why a body could not be read. Field is the key concerned, for
// all kinds but Malformed; Detail is a sentence fragment for Malformed and
// BadMetadata.
type Error struct {
	Kind   ErrorKind
	Field  string
	Detail string
}

func (e *Error) Error() string { return e.Field + ": " + e.Detail }

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
