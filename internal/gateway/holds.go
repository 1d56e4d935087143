package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
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

var (
	holdFields     = []string{"id", "from_account_id", "to_account_id", "amount", "currency", "timeout_seconds", "metadata", "reference"}
	postFields     = []string{"id", "amount", "metadata", "reference"}
	voidFields     = []string{"id", "metadata", "reference"}
	reversalFields = []string{"id", "amount", "metadata", "reference"}

	holdReader     = wire.Reader{Names: holdFields}
	postReader     = wire.Reader{Names: postFields}
	voidReader     = wire.Reader{Names: voidFields}
	reversalReader = wire.Reader{Names: reversalFields}
)

// decodeHold reads POST /v1/holds: a transfer's fields and an optional
// timeout_seconds, a JSON integer.
func decodeHold(body []byte) (transfer.Request, *Problem) {
	var v [8]wire.Value
	if p := readObject(body, &holdReader, v[:]); p != nil {
		return transfer.Request{}, p
	}
	r := transfer.Request{Kind: transfer.KindHold}
	var p *Problem
	if r.ID, p = stringID(holdFields[0], v[0]); p != nil {
		return r, p
	}
	if r.From, p = stringID(holdFields[1], v[1]); p != nil {
		return r, p
	}
	if r.To, p = stringID(holdFields[2], v[2]); p != nil {
		return r, p
	}
	if r.Amount, p = amount(v[3], false); p != nil {
		return r, p
	}
	if r.Currency, p = stringField(holdFields[4], v[4]); p != nil {
		return r, p
	}
	if r.Timeout, p = timeoutSeconds(v[5]); p != nil {
		return r, p
	}
	return r, labels(&r, v[6], v[7])
}

func timeoutSeconds(v wire.Value) (time.Duration, *Problem) {
	switch v.Kind {
	case wire.Absent, wire.Null:
		return 0, nil
	case wire.Number:
	default:
		return 0, fieldProblem(transfer.CodeInvalidTimeout, "timeout_seconds", "Field \"timeout_seconds\" must be a whole number of seconds, not "+v.Kind.String()+".")
	}
	d, ok := wire.Seconds(v.Text)
	if !ok {
		return 0, fieldProblem(transfer.CodeInvalidTimeout, "timeout_seconds", "Field \"timeout_seconds\" must be a whole number of seconds, at most 2592000 (30 days).")
	}
	return d, nil
}

// decodeSettle reads the body of a post or void: the request id and, for a
// post, an optional amount. An explicit "0" is refused: zero would read as
// "not given", the whole hold.
func decodeSettle(kind transfer.Kind, holdID uuid.UUID, body []byte) (transfer.Request, *Problem) {
	r := transfer.Request{Kind: kind, HoldID: holdID}
	var v [4]wire.Value
	var p *Problem
	if kind == transfer.KindVoid {
		if p := readObject(body, &voidReader, v[:3]); p != nil {
			return transfer.Request{}, p
		}
		if r.ID, p = stringID("id", v[0]); p != nil {
			return r, p
		}
		return r, labels(&r, v[1], v[2])
	}
	if p := readObject(body, &postReader, v[:]); p != nil {
		return transfer.Request{}, p
	}
	if r.ID, p = stringID("id", v[0]); p != nil {
		return r, p
	}
	if r.Amount, p = optionalAmount(v[1], "the whole hold"); p != nil {
		return r, p
	}
	return r, labels(&r, v[2], v[3])
}

// decodeReversal reads the body of a reversal: the request id and an
// optional amount (default: what is left to reverse).
func decodeReversal(transferID uuid.UUID, body []byte) (transfer.Request, *Problem) {
	var v [4]wire.Value
	if p := readObject(body, &reversalReader, v[:]); p != nil {
		return transfer.Request{}, p
	}
	r := transfer.Request{Kind: transfer.KindReversal, Reverses: transferID}
	var p *Problem
	if r.ID, p = stringID("id", v[0]); p != nil {
		return r, p
	}
	if r.Amount, p = optionalAmount(v[1], "what is left to reverse"); p != nil {
		return r, p
	}
	return r, labels(&r, v[2], v[3])
}

func optionalAmount(v wire.Value, whole string) (amt decimal.Decimal, p *Problem) {
	if v.Kind == wire.Absent || v.Kind == wire.Null {
		return amt, nil
	}
	if amt, p = amount(v, false); p != nil {
		return amt, p
	}
	if amt.IsZero() {
		return amt, fieldProblem(transfer.CodeTransferAmountMustBePositive, "amount",
			"The amount must be greater than zero; leave it out for "+whole+".")
	}
	return amt, nil
}

// postHold serves POST /v1/holds: a transfer's answers, with Location at
// the hold.
func (g *Gateway) postHold(c *fiber.Ctx) error {
	body, p := jsonBody(c, false)
	if p != nil {
		return p
	}
	r, p := decodeHold(body)
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
		r, p := decodeSettle(kind, holdID, body)
		if p != nil {
			return p
		}
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
	r, p := decodeReversal(origID, body)
	if p != nil {
		return p
	}
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

// reversedAmount shows how much of an applied transfer, deposit,
// withdrawal or post was reversed.
func (g *Gateway) reversedAmount(ctx context.Context, b *transferBody, t transfer.Transfer) {
	switch t.Kind {
	case transfer.KindTransfer, transfer.KindDeposit, transfer.KindWithdrawal, transfer.KindPost:
		if t.Status == transfer.StatusApplied {
			b.ReversedAmount = g.currencies.format(ctx, t.ReversedAmount, t.Currency)
		}
	}
}
