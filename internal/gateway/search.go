package gateway

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/wallet/wallet/internal/transfer"
)

// searchRoutes registers the searches, balances at an instant and the
// account metadata patch.
func (g *Gateway) searchRoutes(read, write fiber.Handler) {
	g.handle(fiber.MethodGet, "/v1/transfers", read, g.searchTransfers)
	g.handle(fiber.MethodGet, "/v1/accounts/:id/balance", read, g.getBalance)
	g.handle(fiber.MethodPatch, "/v1/accounts/:id", write, g.patchAccount)
}

// maxSearchLimit bounds a page of GET /v1/transfers: each row is a full
// request, and a search walks an index a page at a time.
const maxSearchLimit = 500

// metadataPrefix starts a query parameter that filters by metadata.
const metadataPrefix = "metadata."

// searchParams are the query parameters GET /v1/transfers knows, besides
// metadata.<key>. Any other is refused, so that a misspelt filter is not
// taken for no filter.
var searchParams = map[string]bool{
	"limit": true, "cursor": true, "account_id": true, "kind": true, "status": true, "reference": true,
	"created_after": true, "created_before": true,
}

// searchTransfers serves GET /v1/transfers: decided requests of every kind,
// newest decision first, filtered. ?reference= is the lookup by the
// client's own id.
func (g *Gateway) searchTransfers(c *fiber.Ctx) error {
	var unknown string
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		if key := string(k); unknown == "" && !searchParams[key] && !strings.HasPrefix(key, metadataPrefix) {
			unknown = key
		}
	})
	if unknown != "" {
		name := clip(unknown)
		return fieldProblem(CodeInvalidField, name, "Unknown query parameter "+strconv.Quote(name)+".")
	}
	limit, cursor, p := pageParams(c)
	if p != nil {
		return p
	}
	if limit > maxSearchLimit {
		return fieldProblem(CodeInvalidField, "limit", "limit must be an integer from 1 to 500.")
	}
	var f transfer.Filter
	if s := c.Query("account_id"); s != "" {
		id, ok := transfer.ParseID(s)
		if !ok {
			return fieldProblem(CodeInvalidField, "account_id", "account_id must be a UUID.")
		}
		f.Account = id
	}
	if s := c.Query("kind"); s != "" {
		switch k := transfer.Kind(s); k {
		case transfer.KindTransfer, transfer.KindDeposit, transfer.KindWithdrawal, transfer.KindHold,
			transfer.KindPost, transfer.KindVoid, transfer.KindReversal:
			f.Kind = k
		default:
			return fieldProblem(CodeInvalidField, "kind",
				"kind must be one of transfer, deposit, withdrawal, hold, post, void and reversal.")
		}
	}
	if s := c.Query("status"); s != "" {
		switch st := transfer.Status(s); st {
		case transfer.StatusApplied, transfer.StatusRejected:
			f.Status = st
		default:
			return fieldProblem(CodeInvalidField, "status",
				"status must be applied or rejected: a pending request is found by its id, not by search.")
		}
	}
	if s := c.Query("reference"); s != "" {
		if len(s) > 128 || !utf8.ValidString(s) {
			return fieldProblem(CodeInvalidField, "reference", "reference must be 1 to 128 characters.")
		}
		f.Reference = s
	}
	var empty bool
	if f.Metadata, empty, p = metadataQuery(c); p != nil {
		return p
	}
	if f.After, p = timeQuery(c, "created_after"); p != nil {
		return p
	}
	if f.Before, p = timeQuery(c, "created_before"); p != nil {
		return p
	}
	if empty {
		return c.JSON(newPage([]*transferBody{}, ""))
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, next, err := g.store.SearchTransfers(ctx, f, cursor, limit)
	switch {
	case errors.Is(err, transfer.ErrBadCursor):
		return fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
	case err != nil:
		return g.storeProblem(c, "search transfers", err)
	}
	out := make([]*transferBody, len(list))
	for i, t := range list {
		out[i] = g.decidedBody(ctx, t)
	}
	return c.JSON(newPage(out, next))
}

// metadataQuery reads the metadata.<key>=<value> parameters: every pair
// must match. empty reports a key asked for with two different values,
// which no object matches.
func metadataQuery(c *fiber.Ctx) (map[string]string, bool, *Problem) {
	var m map[string]string
	var p *Problem
	empty := false
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		key, ok := strings.CutPrefix(string(k), metadataPrefix)
		if !ok || p != nil {
			return
		}
		if err := transfer.ValidateMetadataKey(key); err != nil {
			p = fieldProblem(transfer.CodeInvalidMetadata, metadataPrefix+clip(key), sentence(err))
			return
		}
		if len(v) > transfer.MaxMetadataValueLen || !utf8.Valid(v) {
			p = fieldProblem(transfer.CodeInvalidMetadata, metadataPrefix+key,
				"A metadata value is valid UTF-8 of at most "+strconv.Itoa(transfer.MaxMetadataValueLen)+" bytes.")
			return
		}
		if m == nil {
			m = map[string]string{}
		}
		if old, seen := m[key]; seen && old != string(v) {
			empty = true
		}
		m[key] = string(v)
	})
	if len(m) > transfer.MaxMetadataKeys {
		return nil, false, fieldProblem(transfer.CodeInvalidMetadata, "metadata",
			"At most "+strconv.Itoa(transfer.MaxMetadataKeys)+" metadata keys can be asked for; no object has more.")
	}
	return m, empty, p
}

// timeQuery reads an RFC 3339 time parameter; absent is the zero time. A
// '+' of an offset sent unescaped arrives as a space, and is read as the
// '+' it was.
func timeQuery(c *fiber.Ctx, name string) (time.Time, *Problem) {
	s := c.Query(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "+", 1))
	if err != nil {
		return time.Time{}, fieldProblem(CodeInvalidField, name,
			name+" must be an RFC 3339 time such as \"2026-01-31T23:59:59Z\".")
	}
	return t, nil
}

// balanceBody is an account's balance as of an instant.
type balanceBody struct {
	AccountID string `json:"account_id"`
	Currency  string `json:"currency"`
	Balance   string `json:"balance"`
	// Available is the balance less what the account's holds reserved at
	// that instant.
	Available string    `json:"available"`
	At        time.Time `json:"at"`
	// Version is the version of the last entry at or before At: 0 before
	// the first.
	Version int64 `json:"version"`
}

// getBalance serves GET /v1/accounts/{id}/balance: the balance now, or
// with ?at= as of that instant, exact to the entry.
func (g *Gateway) getBalance(c *fiber.Ctx) error {
	id, p := pathID(c, "id")
	if p != nil {
		return p
	}
	at, p := timeQuery(c, "at")
	if p != nil {
		return p
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	b, err := g.store.BalanceAt(ctx, id, at)
	switch {
	case errors.Is(err, transfer.ErrNotFound):
		return problem(CodeNotFound, "No account has this id.")
	case err != nil:
		return g.storeProblem(c, "balance", err)
	}
	return c.JSON(balanceBody{
		AccountID: b.AccountID.String(),
		Currency:  b.Currency,
		Balance:   g.currencies.format(ctx, b.Balance, b.Currency),
		Available: g.currencies.format(ctx, b.Available, b.Currency),
		At:        b.At.UTC(),
		Version:   b.Version,
	})
}

// patchAccount serves PATCH /v1/accounts/{id}: {"metadata": {...}} is a
// JSON merge patch of the account's metadata (a null value removes the
// key). The body is application/json or application/merge-patch+json.
func (g *Gateway) patchAccount(c *fiber.Ctx) error {
	id, p := pathID(c, "id")
	if p != nil {
		return p
	}
	// RFC 7396's media type is read as JSON: the body is the same.
	if mt, _, _ := strings.Cut(c.Get(fiber.HeaderContentType), ";"); strings.EqualFold(strings.TrimSpace(mt), "application/merge-patch+json") {
		c.Request().Header.SetContentType(fiber.MIMEApplicationJSON)
	}
	body, p := jsonBody(c, false)
	if p != nil {
		return p
	}
	req, p := decodeAccountRequest(body, "metadata")
	if p != nil {
		return p
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	a, err := g.store.PatchAccountMetadata(ctx, id, req.Metadata)
	var domain *transfer.Error
	switch {
	case errors.Is(err, transfer.ErrNotFound):
		return problem(CodeNotFound, "No account has this id.")
	case errors.As(err, &domain):
		return metadataProblem(err)
	case err != nil:
		return g.storeProblem(c, "patch account", err)
	}
	return c.JSON(g.accountBody(ctx, a))
}
