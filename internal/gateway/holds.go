package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// Holds, their posts and voids, and reversals. A post, void or reversal
// names a hold or a request, not accounts, yet it must be filed under the
// account that orders it (the hold's sender, the account a reversal
// debits) so that it is applied after what it settles or reverses; the
// gateway finds that account in the database or, while the hold or
// transfer is not decided yet, in the requests stream. When neither knows
// the hold or transfer, the request could never be applied: it is refused
// at once (422 hold_not_found or transfer_not_found) and nothing is stored.

func (g *Gateway) holdRoutes(read, write fiber.Handler) {
	g.handle(fiber.MethodPost, "/v1/holds", write, g.postHold)
	g.handle(fiber.MethodGet, "/v1/holds/:hold_id", read, g.getHold)
	g.handle(fiber.MethodPost, "/v1/holds/:hold_id/post", write, g.postSettle(transfer.KindPost))
	g.handle(fiber.MethodPost, "/v1/holds/:hold_id/void", write, g.postSettle(transfer.KindVoid))
	g.handle(fiber.MethodGet, "/v1/accounts/:id/holds", read, g.listHolds)
	g.handle(fiber.MethodPost, "/v1/transfers/:transfer_id/reversals", write, g.postReversal)
	g.handle(fiber.MethodGet, "/v1/transfers/:transfer_id/reversals", read, g.listReversals)
}

// postHold serves POST /v1/holds: a transfer's answers, with Location at
// the hold.
func (g *Gateway) postHold(c *fiber.Ctx) error {
	body, p := jsonBody(c, false)
	if p != nil {
		return p
	}
	r, p := decode(wire.Hold, body)
	if p != nil {
		return p
	}
	if p := g.check(c.UserContext(), &r); p != nil {
		return p
	}
	return g.answerV1(c, r, "/v1/holds/")
}

// postSettle serves POST /v1/holds/{hold_id}/post and .../void.
func (g *Gateway) postSettle(kind transfer.Kind) fiber.Handler {
	return func(c *fiber.Ctx) error {
		holdID, p := pathID(c, "hold_id")
		if p != nil {
			return p
		}
		body, p := jsonBody(c, false)
		if p != nil {
			return p
		}
		form := wire.Post
		if kind == transfer.KindVoid {
			form = wire.Void
		}
		r, p := decode(form, body)
		if p != nil {
			return p
		}
		r.HoldID = holdID
		if p := g.check(c.UserContext(), &r); p != nil {
			return p
		}
		ctx := c.UserContext()
		sender, found, err := g.holdSender(ctx, holdID)
		if err != nil {
			g.log.Warn("hold lookup failed", zap.String("trace_id", traceID(c)), zap.Error(err))
			return unavailable("The hold cannot be looked up right now; retry with the same id.")
		}
		if !found {
			return g.unknownTarget(c, r, transfer.CodeHoldNotFound, "hold_id", "No hold has the id "+holdID.String()+".")
		}
		r.Partition = sender
		return g.answerV1(c, r, "/v1/transfers/")
	}
}

// postReversal serves POST /v1/transfers/{transfer_id}/reversals.
func (g *Gateway) postReversal(c *fiber.Ctx) error {
	origID, p := pathID(c, "transfer_id")
	if p != nil {
		return p
	}
	body, p := jsonBody(c, false)
	if p != nil {
		return p
	}
	r, p := decode(wire.Reversal, body)
	if p != nil {
		return p
	}
	r.Reverses = origID
	if p := g.check(c.UserContext(), &r); p != nil {
		return p
	}
	ctx := c.UserContext()
	account, known, err := g.reversalAccount(ctx, origID)
	if err != nil {
		g.log.Warn("transfer lookup failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return unavailable("The transfer cannot be looked up right now; retry with the same id.")
	}
	if !known {
		return g.unknownTarget(c, r, transfer.CodeTransferNotFound, "transfer_id", "No transfer has the id "+origID.String()+".")
	}
	if account == uuid.Nil {
		// A rejected request that named no account: nothing to reverse.
		return g.unknownTarget(c, r, transfer.CodeTransferNotReversible, "transfer_id", "The transfer "+origID.String()+" moved no money.")
	}
	r.Partition = account
	return g.answerV1(c, r, "/v1/transfers/")
}

// unknownTarget answers a post, void or reversal whose hold or transfer
// the service does not know: from the database when the request's own id
// was decided (a resubmission), else 422 with code, nothing stored.
func (g *Gateway) unknownTarget(c *fiber.Ctx, r transfer.Request, code transfer.Code, field, detail string) error {
	_, decided, err := g.decided(c.UserContext(), r.ID)
	if err != nil {
		return g.storeProblem(c, "get transfer", err)
	}
	if decided {
		return g.answerV1(c, r, "/v1/transfers/")
	}
	return fieldProblem(code, field, detail+" Nothing was stored.")
}

// holdSender finds the sender of hold id: from its decision, or from the
// hold request while it waits in the requests stream. found is false when
// no hold request with a sender is known.
func (g *Gateway) holdSender(ctx context.Context, id uuid.UUID) (uuid.UUID, bool, error) {
	h, found, err := g.findHold(ctx, id)
	if err != nil || !found || h.From == uuid.Nil {
		return uuid.Nil, false, err
	}
	return h.From, true, nil
}

// findHold reads hold id from the database, else the pending hold request
// from the requests stream (state pending), else the database again, since
// the request may be applied between the first two looks.
func (g *Gateway) findHold(ctx context.Context, id uuid.UUID) (transfer.Hold, bool, error) {
	get := func() (transfer.Hold, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
		defer cancel()
		return found(g.store.GetHold(ctx, id))
	}
	if h, ok, err := get(); err != nil || ok {
		return h, ok, err
	}
	lctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	r, found, err := g.queue.LookupPending(lctx, id)
	cancel()
	if err != nil {
		return transfer.Hold{}, false, err
	}
	if found {
		if r.Kind != transfer.KindHold {
			return transfer.Hold{}, false, nil
		}
		return transfer.Hold{ID: r.ID, From: r.From, To: r.To, Amount: r.Amount, Currency: transfer.NormalizeCurrency(r.Currency),
			State: transfer.HoldStatePending, CreatedAt: r.AcceptedAt, UpdatedAt: r.AcceptedAt,
			Metadata: r.Metadata, Reference: r.Reference}, true, nil
	}
	return get()
}

// reversalAccount finds the account a reversal of id is filed under: the
// account it debits (the original's receiver), or for a withdrawal the
// account it credits back. For a request that cannot be reversed (a
// rejection, a hold, a void) any account it names will do: the store
// rejects the reversal whatever it is filed under. known is false when the
// service knows no request with id; the account is uuid.Nil when the
// request names none (a rejection of a request without accounts).
func (g *Gateway) reversalAccount(ctx context.Context, id uuid.UUID) (account uuid.UUID, known bool, err error) {
	st, err := g.lookup(ctx, id)
	if err != nil {
		return uuid.Nil, false, err
	}
	var from, to uuid.UUID
	switch {
	case st.decided:
		from, to = st.t.From, st.t.To
	case st.pending:
		r := st.p.Request
		from, to = r.From, r.To
		if r.Kind.Settles() {
			// A post moves money between its hold's accounts.
			h, found, err := g.findHold(ctx, r.HoldID)
			if err != nil {
				return uuid.Nil, false, err
			}
			if found {
				from, to = h.From, h.To
			} else {
				from = r.Partition
			}
		} else if r.Kind == transfer.KindReversal {
			from = r.Partition
		}
	default:
		return uuid.Nil, false, nil
	}
	return transfer.ReversalAccount(transfer.Transfer{From: from, To: to}), true, nil
}

// holdBody is a hold resource.
type holdBody struct {
	ID            string             `json:"id"`
	State         transfer.HoldState `json:"state"`
	Reason        transfer.Code      `json:"reason,omitempty"`
	FromAccountID string             `json:"from_account_id,omitempty"`
	ToAccountID   string             `json:"to_account_id,omitempty"`
	Amount        string             `json:"amount"`
	PostedAmount  string             `json:"posted_amount"`
	Currency      string             `json:"currency"`
	// ExpiresAt is null for a hold without a timeout, and while pending.
	ExpiresAt *time.Time `json:"expires_at"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	// Metadata and Reference are the hold request's; absent when it had
	// none.
	Metadata  map[string]string `json:"metadata,omitempty"`
	Reference string            `json:"reference,omitempty"`
}

func (g *Gateway) holdBody(ctx context.Context, h transfer.Hold) holdBody {
	b := holdBody{
		ID:           h.ID.String(),
		State:        h.State,
		Reason:       h.Reason,
		Amount:       g.currencies.format(ctx, h.Amount, h.Currency),
		PostedAmount: g.currencies.format(ctx, h.PostedAmount, h.Currency),
		Currency:     h.Currency,
		CreatedAt:    h.CreatedAt.UTC(),
		UpdatedAt:    h.UpdatedAt.UTC(),
		Metadata:     h.Metadata,
		Reference:    h.Reference,
	}
	if h.From != uuid.Nil {
		b.FromAccountID = h.From.String()
	}
	if h.To != uuid.Nil {
		b.ToAccountID = h.To.String()
	}
	if !h.ExpiresAt.IsZero() {
		at := h.ExpiresAt.UTC()
		b.ExpiresAt = &at
	}
	return b
}

// getHold serves GET /v1/holds/{hold_id}.
func (g *Gateway) getHold(c *fiber.Ctx) error {
	id, p := pathID(c, "hold_id")
	if p != nil {
		return p
	}
	ctx := c.UserContext()
	h, found, err := g.findHold(ctx, id)
	if err != nil {
		g.log.Warn("hold lookup failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return unavailable("The hold cannot be looked up right now.")
	}
	if !found {
		return problem(CodeNotFound, "No hold with this id was accepted.")
	}
	return c.JSON(g.holdBody(ctx, h))
}

// listHolds serves GET /v1/accounts/{id}/holds: the holds the account
// reserves for, oldest first, by cursor; ?state= keeps one state.
func (g *Gateway) listHolds(c *fiber.Ctx) error {
	id, p := pathID(c, "id")
	if p != nil {
		return p
	}
	limit, cursor, p := pageParams(c)
	if p != nil {
		return p
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, next, err := g.store.ListHolds(ctx, id, transfer.HoldState(c.Query("state")), cursor, limit)
	switch {
	case errors.Is(err, transfer.ErrBadFilter):
		return fieldProblem(CodeInvalidField, "state", "state must be held, posted, voided or expired.")
	case errors.Is(err, transfer.ErrBadCursor):
		return fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
	case err != nil:
		return g.storeProblem(c, "list holds", err)
	}
	return accountPage(ctx, g, c, id, list, next, g.holdBody)
}

// listReversals serves GET /v1/transfers/{transfer_id}/reversals: the
// reversals decided for the transfer, applied and rejected, in the order
// they were decided.
func (g *Gateway) listReversals(c *fiber.Ctx) error {
	id, p := pathID(c, "transfer_id")
	if p != nil {
		return p
	}
	limit, cursor, p := pageParams(c)
	if p != nil {
		return p
	}
	ctx, cancel := withTimeout(c)
	defer cancel()
	list, next, err := g.store.ListReversals(ctx, id, cursor, limit)
	switch {
	case errors.Is(err, transfer.ErrBadCursor):
		return fieldProblem(CodeBadCursor, "cursor", "The cursor is not one this service issued.")
	case err != nil:
		return g.storeProblem(c, "list reversals", err)
	}
	if len(list) == 0 {
		st, err := g.lookup(ctx, id)
		if err != nil {
			return g.storeProblem(c, "get transfer", err)
		}
		if !st.decided && !st.pending {
			return problem(CodeNotFound, "No request with this id was accepted.")
		}
	}
	out := make([]*transferBody, len(list))
	for i, t := range list {
		out[i] = g.decidedBody(ctx, t)
	}
	return c.JSON(newPage(out, next))
}

// settlementFields fills the fields of a post, void or reversal: the
// accounts once known, the hold or transfer it names, and the amount only
// when there is one (a pending post without an amount takes the whole
// hold, which is not known yet).
func (g *Gateway) settlementFields(ctx context.Context, b *transferBody, r transfer.Request) {
	if r.From != uuid.Nil {
		b.FromAccountID = r.From.String()
	}
	if r.To != uuid.Nil {
		b.ToAccountID = r.To.String()
	}
	if r.HoldID != uuid.Nil {
		b.HoldID = r.HoldID.String()
	}
	if r.Reverses != uuid.Nil {
		b.Reverses = r.Reverses.String()
	}
	if r.Amount.IsZero() {
		b.Amount = ""
	}
}
