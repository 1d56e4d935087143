package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// String renders t in its configuration form, sha256:<hex>:<scope>.
func (t Token) String() string {
	return "sha256:" + hex.EncodeToString(t.Hash[:]) + ":" + string(t.Scope)
}

// HashToken returns the configuration entry for a plain token, for operators
// and tests that need to produce one.
func HashToken(token string, scope Scope) string {
	return Token{Hash: sha256.Sum256([]byte(token)), Scope: scope}.String()
}

// ParseTokens reads a comma-separated list of sha256:<hex>:read|write
// entries. Errors name the entry by position only, never its text: an
// operator who pasted a plain token by mistake must not find it in a log.
func ParseTokens(s string) ([]Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Token
	for i, entry := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(entry), ":")
		if len(parts) != 3 || parts[0] != "sha256" {
			return nil, fmt.Errorf("entry %d is not sha256:<hex>:read|write (store token hashes, never tokens)", i+1)
		}
		raw, err := hex.DecodeString(parts[1])
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("entry %d: the hash must be 64 hex digits", i+1)
		}
		var t Token
		copy(t.Hash[:], raw)
		switch Scope(parts[2]) {
		case ScopeRead, ScopeWrite:
			t.Scope = Scope(parts[2])
		default:
			return nil, fmt.Errorf("entry %d: the scope must be read or write", i+1)
		}
		out = append(out, t)
	}
	return out, nil
}
