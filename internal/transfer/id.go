package transfer

import "github.com/google/uuid"

// ParseID reads a request or account id as it travels on the wire and in
// subjects: the canonical 36-character form, hex digits in any case. The
// other forms uuid.Parse accepts (braces, "urn:uuid:", bare hex) are
// refused, so an id that reaches a subject or a query is exactly 32 hex
// digits and four dashes. It takes a string or a body's bytes without
// copying either; it is the service's one UUID parser.
func ParseID[T ~string | ~[]byte](s T) (uuid.UUID, bool) {
	var u uuid.UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return uuid.Nil, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
