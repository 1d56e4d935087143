package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
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
// callers: it waits for the outcome. It is positive-idempotent, as the
// original was: an id whose transfer was applied answers OK whatever the
// fields of the resubmission, and an id whose attempts were all rejected is
// decided afresh, with the fields this attempt carries.
func (g *Gateway) legacyPostTransfer(c *fiber.Ctx) error {
	// The original's clients sent no Content-Type. Without a token that
	// would let any web page a browser loads post a transfer (a cross-site
	// request with an untyped body needs no preflight), so only a call a
	// token authenticated keeps that leniency.
	body, p := jsonBody(c, authenticated(c))
	if p != nil {
		return legacyFail(c, p)
	}
	r, p := decode(wire.Legacy, body)
	if p != nil {
		return legacyFail(c, p)
	}
	ctx := c.UserContext()
	if p := g.check(ctx, &r); p != nil {
		return legacyFail(c, p)
	}
	t, decided, err := g.submitAttempt(ctx, r, traceID(c))
	if err != nil {
		g.log.Warn("submit failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return legacyFail(c, submitProblem(err))
	}
	switch {
	case !decided:
		// Stored, and not decided when the wait ran out (or no wait was
		// possible). A retry with the same id is safe: it answers OK if
		// this attempt was applied, and is decided afresh if not.
		return legacyFail(c, legacyPending())
	case t.Status == transfer.StatusApplied:
		return c.JSON(legacyOKBody(nil))
	}
	return legacyFail(c, problem(t.Reason, ""))
}

// submitAttempt is the 2020 API's write path. An id the gateway knows to be
// applied is answered from the database. Otherwise r goes to the requests
// stream at once as a new attempt (its own attempt id and message id, so
// the dedupe window cannot drop it as a copy of an earlier, rejected
// attempt; for an id applied unbeknownst to the gateway the workers replay
// its success) and the gateway waits for this attempt's decision, or the
// id's success by any attempt: from the outcome message that announces it
// (published once the decision is committed), else from the database. A
// decision taken from the message has only the fields the message
// carries: status, reason, attempt, kind, currency and times. decided is
// false when the attempt is stored but the wait ran out first, or
// MaxWaiters requests were already waiting. The error
// wraps errUnavailable when nothing was stored, errOutcomeUnknown when the
// attempt may have been.
func (g *Gateway) submitAttempt(ctx context.Context, r transfer.Request, tid string) (t transfer.Transfer, decided bool, err error) {
	t, ok, err := g.knownDecided(ctx, r.ID)
	if err != nil {
		return t, false, errors.Join(errUnavailable, err)
	}
	if ok && t.Status == transfer.StatusApplied {
		return t, true, nil
	}
	r.Attempt = uuid.New()
	waiting := g.takeWaiter()
	var outcomes <-chan natsbus.Outcome
	if waiting {
		defer g.releaseWaiter()
		var stop func()
		if outcomes, stop, err = g.queue.WatchOutcome(ctx, r.ID); err != nil {
			return t, false, errors.Join(errUnavailable, err)
		}
		defer stop()
	}
	r.AcceptedAt = time.Now().UTC()
	_, perr := g.publish(ctx, r, tid)
	stored := perr == nil
	switch {
	case errors.Is(perr, natsbus.ErrOutcomeUnknown):
		// The attempt may be stored. Waiting tells: its decision appears
		// if it was; if not, the answer stays "unknown".
	case perr != nil:
		return t, false, errors.Join(errUnavailable, perr)
	}
	if !waiting {
		if !stored {
			return t, false, errors.Join(errOutcomeUnknown, perr)
		}
		return t, false, nil
	}
	s := submission{waited: true}
	defer func() { g.countWait(s, false) }()
	timer := time.NewTimer(g.cfg.LegacyWait)
	defer timer.Stop()
	for last := false; !last; {
		select {
		case o := <-outcomes:
			if o.Result.ID == r.ID && o.Decides(r.Attempt) {
				// The worker publishes an outcome only once its decision
				// is committed: the message is the decision, and reading
				// it back from the database would only cost a round trip.
				// Watchers are found by the subject's id; a body naming
				// another id is not this request's answer.
				t := heardDecision(o.Result)
				g.known.add(r.ID)
				s.state = state{decided: true, t: t}
				return t, true, nil
			}
		case <-timer.C:
			last = true
		case <-g.drained:
			last = true
		}
		// Anything else that woke us (another attempt's rejection, a
		// conflict notice, a message that could not be read) is settled by
		// the database; so is the end of the wait, in case an outcome was
		// missed.
		t, ok, err := g.decided(ctx, r.ID)
		if err != nil {
			g.log.Warn("reading outcome after wait", zap.String("trace_id", tid), zap.Error(err))
			continue
		}
		if ok && (t.Status == transfer.StatusApplied || t.DecidedAttempt(r.Attempt)) {
			s.state = state{decided: true, t: t}
			return t, true, nil
		}
	}
	if !stored {
		return t, false, errors.Join(errOutcomeUnknown, perr)
	}
	return t, false, nil
}

// heardDecision is the decision an outcome message announces, as far as
// the message tells it.
func heardDecision(res natsbus.Result) transfer.Transfer {
	return transfer.Transfer{
		ID: res.ID, Kind: res.Kind, Status: res.Status, Reason: res.Reason, Currency: res.Currency,
		AcceptedAt: res.AcceptedAt, ProcessedAt: res.ProcessedAt, Attempt: res.Attempt,
	}
}

// legacyAmount prints an amount as the original service did: as stored,
// without padding to the currency's precision ("1000", "899.89", "0").
// Stored amounts are already rounded to that precision.
func legacyAmount(d decimal.Decimal) string { return d.String() }

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
			Balance:      legacyAmount(a.Balance),
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

// legacyType names an entry in the 2020 API's three types. Posts and
// reversals, which it never had, are told by their shape: between two
// accounts INTERNAL, otherwise money leaving (WITHDRAW) or entering
// (DEPOSIT) the wallet, as a reversed deposit or withdrawal does.
func legacyType(e transfer.Entry) string {
	if t, ok := legacyTypes[e.Kind]; ok {
		return t
	}
	switch {
	case e.Counterparty != uuid.Nil:
		return legacyTypes[transfer.KindTransfer]
	case e.Direction == transfer.DirectionDebit:
		return legacyTypes[transfer.KindWithdrawal]
	}
	return legacyTypes[transfer.KindDeposit]
}

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
			Amount:       legacyAmount(e.Amount),
			AccountID:    e.AccountID.String(),
			Type:         legacyType(e),
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
