package gateway

import (
	"context"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/transfer"
)

// Status values of a transfer resource. Decided ones are transfer.Status.
const statusPending = "pending"

// RFC 7240's headers, which Fiber does not name.
const (
	headerPrefer            = "Prefer"
	headerPreferenceApplied = "Preference-Applied"
)

// transferBody is a transfer resource: a request and what became of it. The
// field names are those of the results stream's envelope, so a client reads
// both with one type.
type transferBody struct {
	ID            string        `json:"id"`
	Kind          transfer.Kind `json:"kind"`
	Status        string        `json:"status"`
	Reason        transfer.Code `json:"reason,omitempty"`
	FromAccountID string        `json:"from_account_id,omitempty"`
	ToAccountID   string        `json:"to_account_id,omitempty"`
	AccountID     string        `json:"account_id,omitempty"`
	Amount        string        `json:"amount,omitempty"`
	Currency      string        `json:"currency,omitempty"`
	AcceptedAt    *time.Time    `json:"accepted_at,omitempty"`
	ProcessedAt   *time.Time    `json:"processed_at,omitempty"`
	// HoldID is the hold a post or void settles.
	HoldID string `json:"hold_id,omitempty"`
	// Reverses is the request a reversal moves money back for.
	Reverses string `json:"reverses,omitempty"`
	// ReversedAmount is the sum of the applied reversals of an applied
	// transfer, deposit, withdrawal or post.
	ReversedAmount string `json:"reversed_amount,omitempty"`
	// Metadata and Reference are the request's, as sent (metadata's keys
	// in sorted order); absent when it had none.
	Metadata  map[string]string `json:"metadata,omitempty"`
	Reference string            `json:"reference,omitempty"`
}

func (g *Gateway) requestBody(ctx context.Context, r transfer.Request, status string, acceptedAt time.Time) *transferBody {
	b := &transferBody{
		ID:        r.ID.String(),
		Kind:      r.Kind,
		Status:    status,
		Currency:  transfer.NormalizeCurrency(r.Currency),
		Metadata:  r.Metadata,
		Reference: r.Reference,
	}
	b.Amount = g.currencies.format(ctx, r.Amount, b.Currency)
	switch r.Kind {
	case transfer.KindDeposit:
		b.AccountID = r.To.String()
	case transfer.KindWithdrawal:
		b.AccountID = r.From.String()
	case transfer.KindTransfer, transfer.KindHold:
		b.FromAccountID, b.ToAccountID = r.From.String(), r.To.String()
	default:
		g.settlementFields(ctx, b, r)
	}
	if !acceptedAt.IsZero() {
		at := acceptedAt.UTC()
		b.AcceptedAt = &at
	}
	return b
}

func (g *Gateway) decidedBody(ctx context.Context, t transfer.Transfer) *transferBody {
	b := g.requestBody(ctx, transfer.Request{ID: t.ID, Kind: t.Kind, From: t.From, To: t.To, Amount: t.Amount, Currency: t.Currency,
		HoldID: t.HoldID, Reverses: t.Reverses, Metadata: t.Metadata, Reference: t.Reference}, string(t.Status), t.AcceptedAt)
	b.Reason = t.Reason
	if t.Status == transfer.StatusApplied && t.Kind.Reversible() {
		// How much of it was reversed.
		b.ReversedAmount = g.currencies.format(ctx, t.ReversedAmount, t.Currency)
	}
	processed := t.ProcessedAt.UTC()
	b.ProcessedAt = &processed
	return b
}

type accountBody struct {
	ID       string `json:"id"`
	Currency string `json:"currency"`
	Balance  string `json:"balance"`
	// Available is the balance less what the account's holds reserve.
	Available string    `json:"available"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Metadata is the client's; {} when it set none.
	Metadata map[string]string `json:"metadata"`
}

func (g *Gateway) accountBody(ctx context.Context, a transfer.Account) accountBody {
	b := accountBody{
		ID:        a.ID.String(),
		Currency:  a.Currency,
		Balance:   g.currencies.format(ctx, a.Balance, a.Currency),
		Available: g.currencies.format(ctx, a.Available(), a.Currency),
		CreatedAt: a.CreatedAt.UTC(),
		UpdatedAt: a.UpdatedAt.UTC(),
		Metadata:  a.Metadata,
	}
	if b.Metadata == nil {
		b.Metadata = map[string]string{}
	}
	return b
}

type entryBody struct {
	TransferID            string             `json:"transfer_id"`
	Kind                  transfer.Kind      `json:"kind"`
	Direction             transfer.Direction `json:"direction"`
	Amount                string             `json:"amount"`
	Currency              string             `json:"currency"`
	CounterpartyAccountID *string            `json:"counterparty_account_id"`
	BalanceAfter          string             `json:"balance_after"`
	CreatedAt             time.Time          `json:"created_at"`
}

func (g *Gateway) entryBody(ctx context.Context, e transfer.Entry) entryBody {
	b := entryBody{
		TransferID:   e.TransferID.String(),
		Kind:         e.Kind,
		Direction:    e.Direction,
		Amount:       g.currencies.format(ctx, e.Amount, e.Currency),
		Currency:     e.Currency,
		BalanceAfter: g.currencies.format(ctx, e.BalanceAfter, e.Currency),
		CreatedAt:    e.CreatedAt.UTC(),
	}
	if e.Counterparty != uuid.Nil {
		s := e.Counterparty.String()
		b.CounterpartyAccountID = &s
	}
	return b
}

// page is a list response.
type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func newPage[T any](data []T, next string) page[T] {
	p := page[T]{Data: data}
	if p.Data == nil {
		p.Data = []T{}
	}
	if next != "" {
		p.NextCursor = &next
	}
	return p
}

// jsonBody returns the raw request body after checking its media type.
// Compressed bodies are refused: decompressing would let a 64 KiB body
// expand past the size limit. The original API's clients may omit the
// Content-Type, as they always could (legacy).
func jsonBody(c *fiber.Ctx, legacy bool) ([]byte, *Problem) {
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil, problem(CodeUnsupportedMediaType, "Content-Encoding "+strconv.Quote(clip(enc))+" is not supported; send the body uncompressed.")
	}
	ct := c.Get(fiber.HeaderContentType)
	if ct == "" && legacy {
		return c.Request().Body(), nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return nil, problem(CodeUnsupportedMediaType, "Content-Type must be application/json.")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, problem(CodeUnsupportedMediaType, "The only supported charset is utf-8.")
	}
	return c.Request().Body(), nil
}

// pathID reads a UUID path parameter.
func pathID(c *fiber.Ctx, name string) (uuid.UUID, *Problem) {
	id, ok := transfer.ParseID(c.Params(name))
	if !ok {
		return uuid.Nil, fieldProblem(CodeInvalidField, name, "The "+name+" in the path must be a UUID.")
	}
	return id, nil
}

const (
	defaultPageLimit = 50
	maxPageLimit     = 1000
	maxCursorLength  = 256
)

// pageParams reads ?limit= and ?cursor=.
func pageParams(c *fiber.Ctx) (int, string, *Problem) {
	limit := defaultPageLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageLimit {
			return 0, "", fieldProblem(CodeInvalidField, "limit", "limit must be an integer from 1 to 1000.")
		}
		limit = n
	}
	cursor := c.Query("cursor")
	if len(cursor) > maxCursorLength {
		return 0, "", fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
	}
	return limit, cursor, nil
}

// preferWait reads RFC 7240's "Prefer: wait=N" (seconds), capped at
// MaxWait. Malformed preferences are ignored, as the RFC allows.
func (g *Gateway) preferWait(c *fiber.Ctx) (time.Duration, bool) {
	var wait time.Duration
	found := false
	for _, h := range c.Request().Header.PeekAll(headerPrefer) {
		for _, pref := range strings.Split(string(h), ",") {
			pref, _, _ = strings.Cut(pref, ";")
			name, value, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
			if err != nil || n < 0 {
				continue
			}
			found = true
			if wait = g.cfg.MaxWait; n < int(g.cfg.MaxWait/time.Second) {
				wait = time.Duration(n) * time.Second
			}
		}
	}
	return wait, found
}

// currencyView reads the currencies table for checks and views. The store
// caches the table and decides when to read it again; a code the cached
// table lacks makes it look again, so a currency added at runtime is seen
// quickly.
type currencyView struct {
	store Store
}

// table returns the currencies table, looking again when it lacks one of
// codes. err is set only when the table was never read and cannot be.
func (v currencyView) table(ctx context.Context, codes ...string) (transfer.Currencies, error) {
	ctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	defer cancel()
	return v.store.Currencies(ctx, codes...)
}

// format writes an amount for a response. The HTTP API shows amounts as
// the ledger holds them, at their currency's precision, so an amount not
// stored yet (a pending request's) is rounded as it will be stored; stored
// amounts are rounded already. An amount in a currency the table does not
// know (a rejected request's), or when the table cannot be read, is
// written as stored.
func (v currencyView) format(ctx context.Context, d decimal.Decimal, currency string) string {
	cs, err := v.table(ctx, currency)
	p, ok := cs[currency]
	if err != nil || !ok {
		return d.String()
	}
	return transfer.FormatAmount(transfer.RoundAmount(d, p), p)
}
