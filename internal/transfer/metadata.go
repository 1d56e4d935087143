package transfer

import (
	"sort"
	"strconv"
	"unicode/utf8"
)

// CodeInvalidMetadata is the code of metadata breaking one of the limits below. The detail
// names the key at fault.
const CodeInvalidMetadata Code = "invalid_metadata"

// Limits of metadata, on requests and on accounts alike. They keep a row's
// metadata small enough to store inline with it (under Postgres's 2 KiB
// TOAST threshold for typical use) and an index entry per pair cheap.
const (
	MaxMetadataKeys     = 16
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512  // bytes of UTF-8
	MaxMetadataSize     = 4096 // bytes of all keys and values together
)

// ValidateMetadata checks metadata against the limits: at most
// MaxMetadataKeys keys, each 1 to MaxMetadataKeyLen characters of
// [a-z0-9_.-], values valid UTF-8 of at most MaxMetadataValueLen bytes, and
// at most MaxMetadataSize bytes of keys and values in all. nil and empty
// are valid. The error is an *Error with CodeInvalidMetadata.
func ValidateMetadata(m map[string]string) error {
	if len(m) > MaxMetadataKeys {
		return errorf(CodeInvalidMetadata, "metadata has "+strconv.Itoa(len(m))+" keys; at most "+
			strconv.Itoa(MaxMetadataKeys)+" are allowed")
	}
	// Sorted, so that the same metadata always names the same key.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	size := 0
	for _, k := range keys {
		if err := ValidateMetadataKey(k); err != nil {
			return err
		}
		v := m[k]
		if !utf8.ValidString(v) {
			return errorf(CodeInvalidMetadata, "the value of metadata key "+strconv.Quote(k)+" is not valid UTF-8")
		}
		if len(v) > MaxMetadataValueLen {
			return errorf(CodeInvalidMetadata, "the value of metadata key "+strconv.Quote(k)+" has "+
				strconv.Itoa(len(v))+" bytes; at most "+strconv.Itoa(MaxMetadataValueLen)+" are allowed")
		}
		size += len(k) + len(v)
	}
	if size > MaxMetadataSize {
		return errorf(CodeInvalidMetadata, "metadata has "+strconv.Itoa(size)+" bytes of keys and values; at most "+
			strconv.Itoa(MaxMetadataSize)+" are allowed")
	}
	return nil
}

// ValidateMetadataKey checks one key: 1 to MaxMetadataKeyLen characters of
// [a-z0-9_.-]. Search filters name keys too, and are held to the same rule.
func ValidateMetadataKey(k string) error {
	if k == "" || len(k) > MaxMetadataKeyLen {
		return errorf(CodeInvalidMetadata, "metadata key "+strconv.Quote(clipKey(k))+" must have 1 to "+
			strconv.Itoa(MaxMetadataKeyLen)+" characters")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return errorf(CodeInvalidMetadata, "metadata key "+strconv.Quote(clipKey(k))+
				" may use only a-z, 0-9, '_', '.' and '-'")
		}
	}
	return nil
}

// clipKey shortens a key before it is echoed in an error.
func clipKey(k string) string {
	if len(k) <= MaxMetadataKeyLen {
		return k
	}
	return k[:MaxMetadataKeyLen] + "..."
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
