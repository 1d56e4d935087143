package transfer

import (
	"errors"
	"sort"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxReferenceLen bounds a reference, in characters.
const MaxReferenceLen = 128

// CheckMetadata is ValidateMetadata with the domain's error type, for a
// request's rules. The error's detail names the first key at fault, in key
// order.
func CheckMetadata(m map[string]string) *Error {
	if len(m) == 0 {
		return nil
	}
	err := ValidateMetadata(m)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(CodeInvalidMetadata, err.Error())
}

// CheckReference checks a request's reference: "" is none, else 1 to
// MaxReferenceLen printable characters (letters, marks, numbers,
// punctuation, symbols and the ASCII space; no control or format
// characters, no invalid UTF-8).
func CheckReference(ref string) *Error {
	if ref == "" {
		return nil
	}
	n := 0
	for _, r := range ref {
		n++
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return errorf(CodeInvalidReference, "reference must be printable characters")
		}
	}
	if n > MaxReferenceLen {
		return errorf(CodeInvalidReference, "reference has "+strconv.Itoa(n)+" characters, at most "+strconv.Itoa(MaxReferenceLen))
	}
	return nil
}

func metadataKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// appendLabels writes metadata and reference into a fingerprint's input,
// each string prefixed by its length so no value can imitate a boundary.
func appendLabels(b []byte, m map[string]string, ref string) []byte {
	b = append(b, 0, 'm')
	b = strconv.AppendInt(b, int64(len(m)), 10)
	for _, k := range metadataKeys(m) {
		b = appendLenString(b, k)
		b = appendLenString(b, m[k])
	}
	b = append(b, 0, 'r')
	return appendLenString(b, ref)
}

func appendLenString(b []byte, s string) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
