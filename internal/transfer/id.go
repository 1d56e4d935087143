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
	for i, x := range idHexOffsets {
		hi, lo := unhex[s[x]], unhex[s[x+1]]
		if hi|lo > 0x0f {
			return uuid.Nil, false
		}
		u[i] = hi<<4 | lo
	}
	return u, true
}

// idHexOffsets are where the 16 bytes' hex pairs start in the 36-character
// form.
var idHexOffsets = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// unhex maps a hex digit to its value and every other byte to 0xff, so one
// table look-up replaces a switch per digit on the path of every request.
var unhex = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()
