package gateway

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wallet/wallet/internal/transfer"
)

// Every request body the gateway accepts is one flat JSON object whose values
// are strings (or, for the original API's amount, a number). readObject
// reads exactly that shape, strictly: one object and nothing after it, known
// keys only (matched case-sensitively), each at most once. It is written by
// hand rather than with encoding/json because encoding/json accepts
// duplicate keys and matches keys case-insensitively, and because this is
// the hot path of every submission.

// jsonKind is the type of a JSON value.
type jsonKind uint8

const (
	kindAbsent jsonKind = iota // the key did not appear
	kindString
	kindNumber
	kindNull
	kindBool
	kindObject
	kindArray
)

func (k jsonKind) String() string {
	return [...]string{"absent", "a string", "a number", "null", "a boolean", "an object", "an array"}[k]
}

// jsonValue is one decoded value: the string's content, or a number's
// text. It points into the body when the string had no escapes, so reading
// a request allocates only for the values kept as strings.
type jsonValue struct {
	kind jsonKind
	text []byte
}

// maxFields bounds an object spec, so seen keys fit in a bit set.
const maxFields = 32

// readObject decodes body into vals, where vals[i] receives the value of the
// key names[i]. A value that is an object or array stops the scan at once:
// no field of ours takes one, so the caller reports the type.
func readObject(body []byte, names []string, vals []jsonValue) *Problem {
	if len(names) > maxFields || len(vals) != len(names) {
		// A programming error in a decoder's field table, never input.
		panic("readObject: want one value per name and at most 32 names")
	}
	s := scanner{b: body}
	s.space()
	if s.i == len(s.b) {
		return problem(CodeMalformedJSON, "The request body is empty; a JSON object is required.")
	}
	if s.b[s.i] != '{' {
		return problem(CodeMalformedJSON, "The request body must be a JSON object.")
	}
	s.i++
	var seen uint32
	s.space()
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		s.space()
		if s.peek() != '"' {
			return s.syntax("expected a quoted key")
		}
		key, ok := s.str()
		if !ok {
			return s.syntax("invalid string")
		}
		idx := -1
		for i, n := range names {
			if n == string(key) {
				idx = i
				break
			}
		}
		if idx < 0 {
			name := clip(string(key))
			return fieldProblem(CodeUnknownField, name, "Unknown field "+strconv.Quote(name)+".")
		}
		if seen&(1<<idx) != 0 {
			return fieldProblem(CodeDuplicateField, names[idx], "Field "+strconv.Quote(names[idx])+" appears more than once.")
		}
		seen |= 1 << idx
		s.space()
		if s.peek() != ':' {
			return s.syntax("expected ':' after a key")
		}
		s.i++
		s.space()
		v, ok := s.value()
		if !ok {
			return s.syntax("invalid value")
		}
		vals[idx] = v //nolint:gosec // idx indexes names, and len(vals) == len(names) is checked on entry
		if v.kind == kindObject || v.kind == kindArray {
			return nil
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return s.end()
		default:
			return s.syntax("expected ',' or '}'")
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

func (s *scanner) end() *Problem {
	s.space()
	if s.i != len(s.b) {
		return s.syntax("unexpected data after the JSON object")
	}
	return nil
}

func (s *scanner) syntax(what string) *Problem {
	if s.i >= len(s.b) {
		return problem(CodeMalformedJSON, "Malformed JSON: unexpected end of input ("+what+").")
	}
	return problem(CodeMalformedJSON, "Malformed JSON at byte "+strconv.Itoa(s.i)+": "+what+".")
}

// value reads one value. Objects and arrays are only recognised, not read.
func (s *scanner) value() (jsonValue, bool) {
	switch c := s.peek(); {
	case c == '"':
		t, ok := s.str()
		return jsonValue{kind: kindString, text: t}, ok
	case c == '-' || (c >= '0' && c <= '9'):
		t, ok := s.number()
		return jsonValue{kind: kindNumber, text: t}, ok
	case c == '{':
		return jsonValue{kind: kindObject}, true
	case c == '[':
		return jsonValue{kind: kindArray}, true
	case c == 'n':
		return jsonValue{kind: kindNull}, s.literal("null")
	case c == 't':
		return jsonValue{kind: kindBool}, s.literal("true")
	case c == 'f':
		return jsonValue{kind: kindBool}, s.literal("false")
	}
	return jsonValue{}, false
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

// typeProblem reports a value of the wrong type for a string field; amounts
// have their own code.
func typeProblem(field string, got jsonKind) *Problem {
	code := CodeInvalidField
	if field == "amount" {
		code = transfer.CodeInvalidAmount
	}
	return fieldProblem(code, field, "Field "+strconv.Quote(field)+" must be a string, not "+got.String()+".")
}
