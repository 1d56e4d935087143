package gateway

import (
	"context"
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
)

// storeProblem answers a store failure that is not the request's fault:
// logged with the trace id, answered 503 without the cause.
func (g *Gateway) storeProblem(c *fiber.Ctx, what string, err error) *Problem {
	g.log.Warn(what+" failed", zap.String("trace_id", traceID(c)), zap.Error(err))
	return unavailable("The database cannot be reached right now; retry shortly.")
}

func withTimeout(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), dependencyTimeout)
}

// postAccount serves POST /v1/accounts: idempotent by id.
func (g *Gateway) postAccount(c *fiber.Ctx) error {
	body, p := jsonBody(c, false)
	if p != nil {
		return p
	}
	req, p := decodeAccountRequest(body, "id", "currency", "metadata")
	if p != nil {
		return p
	}
	id, currency := req.ID, req.Currency
	metadata, p := metadataValues(req.Metadata)
	if p != nil {
		return p
	}
	if id == uuid.Nil {
		id = uuid.New()
	}
	currency = transfer.NormalizeCurrency(currency)
	ctx, cancel := withTimeout(c)
	defer cancel()
	if !transfer.ValidCurrencyShape(currency) {
		return fieldProblem(transfer.CodeCurrencyNotSupported, "currency", "Field \"currency\" must name a supported currency, such as \"USD\".")
	}
	if cs, err := g.currencies.table(ctx, currency); err != nil {
		return g.storeProblem(c, "currencies", err)
	} else if _, ok := cs[currency]; !ok {
		return fieldProblem(transfer.CodeCurrencyNotSupported, "currency", "Currency "+strconv.Quote(currency)+" is not supported.")
	}
	a, created, err := g.store.CreateAccountWithMetadata(ctx, id, currency, metadata)
	switch {
	case errors.Is(err, transfer.ErrAccountConflict):
		return fieldProblem(CodeAccountConflict, "id", "Account "+id.String()+" exists with currency "+a.Currency+".")
	case errors.Is(err, transfer.ErrCurrencyNotSupported):
		return fieldProblem(transfer.CodeCurrencyNotSupported, "currency", "Currency "+strconv.Quote(currency)+" is not supported.")
	case err != nil:
		return g.storeProblem(c, "create account", err)
	}
	c.Set(fiber.HeaderLocation, "/v1/accounts/"+a.ID.String())
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(g.accountBody(ctx, a))
}

// getAccount serves GET /v1/accounts/{id}.
func (g *Gateway) getAccount(c *fiber.Ctx) error {
	id, p := pathID(c, "id")
	if p != nil {
		return p
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	a, err := g.store.GetAccount(ctx, id)
	switch {
	case errors.Is(err, transfer.ErrNotFound):
		return problem(CodeNotFound, "No account has this id.")
	case err != nil:
		return g.storeProblem(c, "get account", err)
	}
	return c.JSON(g.accountBody(ctx, a))
}

// listAccounts serves GET /v1/accounts: oldest first, by cursor, filtered
// by metadata.<key>=<value> (every pair must match).
func (g *Gateway) listAccounts(c *fiber.Ctx) error {
	limit, cursor, p := pageParams(c)
	if p != nil {
		return p
	}
	metadata, empty, p := metadataQuery(c)
	if p != nil {
		return p
	}
	if empty {
		return c.JSON(newPage([]accountBody{}, ""))
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, next, err := g.store.SearchAccounts(ctx, metadata, cursor, limit)
	switch {
	case errors.Is(err, transfer.ErrBadCursor):
		return fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
	case err != nil:
		return g.storeProblem(c, "list accounts", err)
	}
	out := make([]accountBody, len(list))
	for i, a := range list {
		out[i] = g.accountBody(ctx, a)
	}
	return c.JSON(newPage(out, next))
}

// accountMustExist tells an empty page of an account's list from an
// unknown account: 404 for the latter. Only an empty page pays the read.
func (g *Gateway) accountMustExist(ctx context.Context, c *fiber.Ctx, id uuid.UUID) error {
	_, ok, err := found(g.store.GetAccount(ctx, id))
	switch {
	case err != nil:
		return g.storeProblem(c, "get account", err)
	case !ok:
		return problem(CodeNotFound, "No account has this id.")
	}
	return nil
}

// accountPage answers one page of an account's list, each item through
// view. An empty page of an unknown account is 404 instead.
func accountPage[T, V any](ctx context.Context, g *Gateway, c *fiber.Ctx, id uuid.UUID, list []T, next string,
	view func(context.Context, T) V) error {
	if len(list) == 0 {
		if p := g.accountMustExist(ctx, c, id); p != nil {
			return p
		}
	}
	out := make([]V, len(list))
	for i, item := range list {
		out[i] = view(ctx, item)
	}
	return c.JSON(newPage(out, next))
}

// listEntries serves GET /v1/accounts/{id}/entries: the statement, newest
// first, optionally within created_after < created_at <= created_before.
// An unknown account is 404, told apart from an empty statement only when
// the page is empty, so a busy account costs one query.
func (g *Gateway) listEntries(c *fiber.Ctx) error {
	id, p := pathID(c, "id")
	if p != nil {
		return p
	}
	limit, cursor, p := pageParams(c)
	if p != nil {
		return p
	}
	var f transfer.EntryFilter
	if f.After, p = timeQuery(c, "created_after"); p != nil {
		return p
	}
	if f.Before, p = timeQuery(c, "created_before"); p != nil {
		return p
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, next, err := g.store.SearchEntries(ctx, id, f, cursor, limit)
	switch {
	case errors.Is(err, transfer.ErrBadCursor):
		return fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
	case err != nil:
		return g.storeProblem(c, "list entries", err)
	}
	return accountPage(ctx, g, c, id, list, next, g.entryBody)
}

type currencyBody struct {
	Code      string `json:"code"`
	Precision int32  `json:"precision"`
}

// listCurrencies serves GET /v1/currencies.
func (g *Gateway) listCurrencies(c *fiber.Ctx) error {
	cs, err := g.currencies.table(c.UserContext())
	if err != nil {
		return g.storeProblem(c, "list currencies", err)
	}
	out := make([]currencyBody, len(cs))
	for i, cur := range cs.List() {
		out[i] = currencyBody{Code: cur.Code, Precision: cur.Precision}
	}
	return c.JSON(struct {
		Data []currencyBody `json:"data"`
	}{out})
}
