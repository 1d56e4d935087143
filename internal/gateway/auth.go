package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Scope is what a bearer token may do.
type Scope string

// Token scopes: read may only read; write may also submit.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// Token is one accepted bearer token, known only by the SHA-256 hash of its
// text, so the configuration holds nothing a reader could replay.
type Token struct {
	Hash  [sha256.Size]byte
	Scope Scope
}

// authorize returns the middleware guarding a route that needs scope need.
// With no tokens configured every request passes. The presented token is
// hashed once and compared with every configured hash in constant time, and
// the loop does not stop at a match, so timing says nothing about which
// token, if any, matched. The token itself is never logged or echoed.
func (g *Gateway) authorize(need Scope) fiber.Handler {
	tokens := g.cfg.Tokens
	return func(c *fiber.Ctx) error {
		if len(tokens) == 0 {
			return c.Next()
		}
		header := c.Get(fiber.HeaderAuthorization)
		scheme, token, ok := strings.Cut(header, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return problem(CodeUnauthorized, "A bearer token is required (Authorization: Bearer <token>).")
		}
		sum := sha256.Sum256([]byte(token))
		var read, write int
		for _, t := range tokens {
			m := subtle.ConstantTimeCompare(sum[:], t.Hash[:])
			if t.Scope == ScopeWrite {
				write |= m
			} else {
				read |= m
			}
		}
		switch {
		case read|write == 0:
			return problem(CodeUnauthorized, "The bearer token is not valid.")
		case need == ScopeWrite && write == 0:
			return problem(CodeForbidden, "The token may only read; submitting needs a write token.")
		}
		c.Locals(localAuthenticated, true)
		return c.Next()
	}
}

// localAuthenticated is the request local authorize sets when a bearer
// token authenticated the request.
const localAuthenticated = "wallet.authenticated"

// authenticated reports whether a bearer token authenticated c. A browser
// never adds one by itself, so such a request cannot be a cross-site
// forgery.
func authenticated(c *fiber.Ctx) bool {
	ok, _ := c.Locals(localAuthenticated).(bool)
	return ok
}
