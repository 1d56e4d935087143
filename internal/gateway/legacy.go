package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
)

// The original 2020 service's API, kept for its clients: every answer is an
// envelope {"result": "OK"|"ERROR", "error": "<code>", "payload": ...}, with
// HTTP 200 for every business outcome. Requests it cannot read at all keep
// their 4xx status (and the envelope), as does an outage (503).

const (
	legacyOK    = "OK"
	legacyError = "ERROR"
	// legacyPageLimit is the original's fixed list size.
	legacyPageLimit = 100
)

type legacyEnvelope struct {
	Result  string `json:"result"`
	Error   string `json:"error"`
	Payload any    `json:"payload"`
}

func legacyOKBody(payload any) legacyEnvelope {
	return legacyEnvelope{Result: legacyOK, Payload: payload}
}

// legacyFail writes an ERROR envelope. A domain rejection is HTTP 200, as
// the original answered it; anything else keeps the problem's status.
func legacyFail(c *fiber.Ctx, p *Problem) error {
	status := p.Status
	if status == fiber.StatusUnprocessableEntity || p.Code == transfer.CodeTransferIDConflict {
		status = fiber.StatusOK
	}
	if p.retryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.retryAfter))
	}
	return c.Status(status).JSON(legacyEnvelope{Result: legacyError, Error: string(p.Code)})
}

// legacyPending answers a stored request whose outcome is not known yet:
// HTTP 202, not 503, which would say that nothing was stored.
func legacyPending() *Problem {
	p := problem(CodeTransferPending, "")
	p.retryAfter = 1
	return p
}

// legacyPostTransfer serves POST /transfers/. It is synchronous for its
// callers: it waits for the outcome. An id whose stored transfer was
// applied answers OK whatever the fields of the resubmission, as the
// original did. A rejection is final: the original forgot rejected
// attempts, this service stores them, so a client retries with a new id.
func (g *Gateway) legacyPostTransfer(c *fiber.Ctx) error {
	// The original's clients sent no Content-Type. Without a token that
	// would let any web page a browser loads post a transfer (a cross-site
	// request with an untyped body needs no preflight), so only a call a
	// token authenticated keeps that leniency.
	body, p := jsonBody(c, authenticated(c))
	if p != nil {
		return legacyFail(c, p)
	}
	r, p := decodeLegacyTransfer(body)
	if p != nil {
		return legacyFail(c, p)
	}
	ctx := c.UserContext()
	if p := g.check(ctx, &r); p != nil {
		return legacyFail(c, p)
	}
	s, err := g.submit(ctx, r, requestID(c), g.cfg.LegacyWait, true)
	if err != nil {
		g.log.Warn("submit failed", zap.String("request_id", requestID(c)), zap.Error(err))
		return legacyFail(c, submitProblem(err))
	}
	conflict := s.decided && s.t.Status == transfer.StatusRejected && s.t.Fingerprint != r.Fingerprint()
	g.countWait(s, conflict)
	switch {
	case !s.decided:
		// Still pending when the wait ran out: the request is stored and
		// will be applied; a retry with the same id gets its outcome.
		return legacyFail(c, legacyPending())
	case s.t.Status == transfer.StatusApplied:
		return c.JSON(legacyOKBody(nil))
	case conflict:
		return legacyFail(c, problem(transfer.CodeTransferIDConflict, ""))
	}
	return legacyFail(c, problem(s.t.Reason, ""))
}

type legacyAccount struct {
	ID           string    `json:"id"`
	CurrencyCode string    `json:"currency_code"`
	Balance      string    `json:"balance"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// legacyListAccounts serves GET /accounts/: the 100 most recently updated.
func (g *Gateway) legacyListAccounts(c *fiber.Ctx) error {
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, err := g.store.ListAccountsRecent(ctx, legacyPageLimit)
	if err != nil {
		return legacyFail(c, g.storeProblem(c, "list recent accounts", err))
	}
	out := make([]legacyAccount, len(list))
	for i, a := range list {
		out[i] = legacyAccount{
			ID:           a.ID.String(),
			CurrencyCode: a.Currency,
			Balance:      g.currencies.format(ctx, a.Balance, a.Currency),
			CreatedAt:    a.CreatedAt.UTC(),
			UpdatedAt:    a.UpdatedAt.UTC(),
		}
	}
	return c.JSON(legacyOKBody(out))
}

type legacyTransfer struct {
	ID                     string    `json:"id"`
	CurrencyCode           string    `json:"currency_code"`
	Amount                 string    `json:"amount"`
	AccountID              string    `json:"account_id"`
	CorrespondingAccountID *string   `json:"corresponding_account_id"`
	Type                   string    `json:"type"`
	Direction              string    `json:"direction"`
	CreatedAt              time.Time `json:"created_at"`
}

var (
	legacyTypes      = map[transfer.Kind]string{transfer.KindDeposit: "DEPOSIT", transfer.KindWithdrawal: "WITHDRAW", transfer.KindTransfer: "INTERNAL"}
	legacyDirections = map[transfer.Direction]string{transfer.DirectionCredit: "INCOMING", transfer.DirectionDebit: "OUTGOING"}
)

// legacyListTransfers serves GET /accounts/{account_id}/transfers/: the
// account's last 100 movements, newest first; an unknown account has none.
func (g *Gateway) legacyListTransfers(c *fiber.Ctx) error {
	id, p := pathID(c, "account_id")
	if p != nil {
		return legacyFail(c, p)
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, _, err := g.store.ListEntries(ctx, id, "", legacyPageLimit)
	if err != nil {
		return legacyFail(c, g.storeProblem(c, "list entries", err))
	}
	out := make([]legacyTransfer, len(list))
	for i, e := range list {
		out[i] = legacyTransfer{
			ID:           e.TransferID.String(),
			CurrencyCode: e.Currency,
			Amount:       g.currencies.format(ctx, e.Amount, e.Currency),
			AccountID:    e.AccountID.String(),
			Type:         legacyTypes[e.Kind],
			Direction:    legacyDirections[e.Direction],
			CreatedAt:    e.CreatedAt.UTC(),
		}
		if e.Kind == transfer.KindTransfer {
			s := e.Counterparty.String()
			out[i].CorrespondingAccountID = &s
		}
	}
	return c.JSON(legacyOKBody(out))
}
