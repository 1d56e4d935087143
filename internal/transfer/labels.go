package transfer

import (
	"sort"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits of a request's metadata and reference. They keep a row small and
// every key usable as a query parameter (metadata.<key>=<value>).
const (
	MaxMetadataKeys     = 16
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512     // bytes of UTF-8
	MaxMetadataSize     = 4 << 10 // bytes of all keys and values together
	MaxReferenceLen     = 128     // characters
)

// CheckMetadata checks a request's metadata: at most MaxMetadataKeys keys
// of 1 to MaxMetadataKeyLen characters of [a-z0-9_.-], each value valid
// UTF-8 of at most MaxMetadataValueLen bytes, all keys and values together
// at most MaxMetadataSize bytes. nil and empty are no metadata. The error's
// detail names the first key at fault, in key order.
func CheckMetadata(m map[string]string) *Error {
	if len(m) == 0 {
		return nil
	}
	if len(m) > MaxMetadataKeys {
		return errorf(CodeInvalidMetadata, "metadata has "+strconv.Itoa(len(m))+" keys, at most "+strconv.Itoa(MaxMetadataKeys))
	}
	size := 0
	for _, k := range metadataKeys(m) {
		v := m[k]
		if !validMetadataKey(k) {
			return errorf(CodeInvalidMetadata, "metadata key "+strconv.Quote(clipDetail(k))+" must be 1 to 64 characters of a-z, 0-9, '_', '.' and '-'")
		}
		if len(v) > MaxMetadataValueLen || !utf8.ValidString(v) {
			return errorf(CodeInvalidMetadata, "metadata value of "+strconv.Quote(k)+" must be valid UTF-8 of at most 512 bytes")
		}
		size += len(k) + len(v)
	}
	if size > MaxMetadataSize {
		return errorf(CodeInvalidMetadata, "metadata has "+strconv.Itoa(size)+" bytes of keys and values, at most "+strconv.Itoa(MaxMetadataSize))
	}
	return nil
}

func validMetadataKey(k string) bool {
	if len(k) == 0 || len(k) > MaxMetadataKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
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

// clipDetail keeps a hostile key short in an error's detail.
func clipDetail(s string) string {
	if len(s) <= MaxMetadataKeyLen {
		return s
	}
	return s[:MaxMetadataKeyLen] + "..."
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
