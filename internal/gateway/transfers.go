package gateway

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/transfer/wire"
)

// check applies every rule that needs no account with transfer's Check, in
// the order the workers apply them, so a request refused here would have
// been rejected there with the same code.
func (g *Gateway) check(ctx context.Context, r *transfer.Request) *Problem {
	r.Currency = transfer.NormalizeCurrency(r.Currency)
	// The table is read only when Check asks: not for a request that
	// breaks an earlier rule, nor for a post, void or reversal.
	var lookupErr error
	e := r.Check(func(code string) (int32, bool) {
		cs, err := g.currencies.table(ctx, code)
		lookupErr = err
		p, ok := cs[code]
		return p, ok
	})
	if lookupErr != nil {
		g.log.Warn("currencies unavailable", zap.Error(lookupErr))
		return unavailable("The currencies table cannot be read; retry shortly.")
	}
	if e != nil {
		return domainProblem(e)
	}
	return nil
}

// state is what the service knows about an id: decided (in the database),
// pending (in the requests stream only), or neither.
type state struct {
	decided bool
	t       transfer.Transfer
	pending bool
	p       Pending
}

// decided reads an id's decision from the database, remembering a decided
// id so that a later submission of it reads the database first.
func (g *Gateway) decided(ctx context.Context, id uuid.UUID) (transfer.Transfer, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	defer cancel()
	t, ok, err := found(g.store.GetTransfer(ctx, id))
	if ok {
		g.known.add(id)
	}
	return t, ok, err
}

// knownDecided reads an id's decision from the database only when the
// gateway knows the id is decided: a new id is published without a
// database read (see decidedIDs for why an id decided unbeknownst to the
// gateway is answered correctly anyway).
func (g *Gateway) knownDecided(ctx context.Context, id uuid.UUID) (transfer.Transfer, bool, error) {
	if !g.known.has(id) {
		return transfer.Transfer{}, false, nil
	}
	return g.decided(ctx, id)
}

// found turns a store read into (value, found, error): not found is an
// answer, not an error.
func found[T any](v T, err error) (T, bool, error) {
	switch {
	case err == nil:
		return v, true, nil
	case errors.Is(err, transfer.ErrNotFound):
		return v, false, nil
	}
	return v, false, err
}

// lookup finds an id: in the database, else in the requests stream, else
// in the database again, because a request may be applied (and leave the
// stream) between the first two looks.
func (g *Gateway) lookup(ctx context.Context, id uuid.UUID) (state, error) {
	if t, ok, err := g.decided(ctx, id); err != nil || ok {
		return state{decided: ok, t: t}, err
	}
	lctx, cancel := context.WithTimeout(ctx, dependencyTimeout)
	r, found, err := g.queue.LookupPending(lctx, id)
	cancel()
	if err != nil {
		return state{}, err
	}
	if found {
		return state{pending: true, p: Pending{Request: r, AcceptedAt: r.AcceptedAt}}, nil
	}
	t, ok, err := g.decided(ctx, id)
	return state{decided: ok, t: t}, err
}

// submission is how a submitted request stands when the gateway answers.
type submission struct {
	state
	// earlier: the decision existed before this submission arrived (a
	// resubmission), rather than being made for it.
	earlier bool
	// waited: the gateway waited for the outcome.
	waited bool
	// overCap: a wait was asked for but MaxWaiters were already waiting.
	overCap bool
	// own: the pending request is the one submitted (not one found under
	// its id), so their fingerprints need no comparing.
	own bool
}

// takeWaiter reserves a place among the waiting requests, or reports that
// MaxWaiters are already waiting (and counts it).
func (g *Gateway) takeWaiter() bool {
	select {
	case g.waiters <- struct{}{}:
		g.metrics.waiters.Inc()
		return true
	default:
		g.metrics.overCap.Inc()
		return false
	}
}

func (g *Gateway) releaseWaiter() {
	<-g.waiters
	g.metrics.waiters.Dec()
}

// errUnavailable wraps a dependency failure while submitting: nothing was
// stored for this submission.
var errUnavailable = errors.New("dependency unavailable")

// errOutcomeUnknown wraps a failure after which the request may be stored:
// its publish was sent but not answered, and no lookup could settle it.
var errOutcomeUnknown = errors.New("outcome unknown")

// submitProblem is the answer for submit's error: a 503 only when nothing
// was stored, since a client may then retry with a new id.
func submitProblem(err error) *Problem {
	if errors.Is(err, errOutcomeUnknown) {
		p := problem(CodeOutcomeUnknown, "The request may have been stored: retry it with the same id, or look it up, before using a new id.")
		p.retryAfter = 1
		return p
	}
	return unavailable("The request could not be stored; retry it with the same id.")
}

// settle is for a publish whose outcome is unknown (natsbus.ErrOutcomeUnknown):
// the request may have been stored after the gateway stopped waiting. When
// the database or the stream holds the id, the publish is treated as a
// duplicate of what they hold; otherwise the outcome stays unknown.
func (g *Gateway) settle(ctx context.Context, id uuid.UUID, err error) (dup bool, _ error) {
	st, lerr := g.lookup(ctx, id)
	if lerr == nil && (st.decided || st.pending) {
		return true, nil
	}
	return false, errors.Join(errOutcomeUnknown, err, lerr)
}

// submit is the v1 API's write path. An id the gateway knows to be decided
// is answered from the database without publishing. Otherwise the request is published (a
// pending duplicate is harmless: JetStream drops it by its message id) and,
// when wait > 0, the outcome is awaited; the watch starts before the publish
// so the outcome cannot slip past. When the stream already holds a
// different request under this id, the answer is about that request, at
// once.
func (g *Gateway) submit(ctx context.Context, r transfer.Request, tid string, wait time.Duration) (submission, error) {
	t, ok, err := g.knownDecided(ctx, r.ID)
	if err != nil {
		return submission{}, errors.Join(errUnavailable, err)
	}
	if ok {
		return submission{state: state{decided: true, t: t}, earlier: true}, nil
	}
	var outcomes <-chan natsbus.Outcome // nil: no wait
	overCap := wait > 0 && !g.takeWaiter()
	if overCap {
		wait = 0
	}
	if wait > 0 {
		defer g.releaseWaiter()
		var stop func()
		if outcomes, stop, err = g.queue.WatchOutcome(ctx, r.ID); err != nil {
			return submission{}, errors.Join(errUnavailable, err)
		}
		defer stop()
	}
	r.AcceptedAt = time.Now().UTC()
	dup, err := g.publish(ctx, r, tid)
	if errors.Is(err, natsbus.ErrOutcomeUnknown) {
		dup, err = g.settle(ctx, r.ID, err)
	}
	if err != nil {
		return submission{}, errors.Join(errUnavailable, err)
	}
	s := submission{state: state{pending: true, p: Pending{Request: r, AcceptedAt: r.AcceptedAt}}, overCap: overCap, own: !dup}
	if dup {
		// The stream already held this id: answer for what it holds, or
		// for its decision if it was decided in the meantime.
		st, err := g.lookup(ctx, r.ID)
		if err != nil {
			// Something is stored under the id; what it is cannot be told.
			return submission{}, errors.Join(errOutcomeUnknown, err)
		}
		if st.decided {
			return submission{state: st, earlier: true}, nil
		}
		if st.pending {
			s.state = st
		} else if err := g.resubmit(ctx, r, tid); errors.Is(err, natsbus.ErrOutcomeUnknown) {
			return submission{}, errors.Join(errOutcomeUnknown, err)
		} else if err != nil {
			return submission{}, errors.Join(errUnavailable, err)
		}
		if s.p.Request.Fingerprint() != r.Fingerprint() {
			return s, nil
		}
	}
	if outcomes == nil {
		return s, nil
	}
	s.waited = true
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-outcomes:
	case <-timer.C:
	case <-g.drained:
	}
	// Whatever woke us, the database says what was decided; a timeout gets
	// one last look in case the notification was missed.
	t, ok, err = g.decided(ctx, r.ID)
	if err != nil {
		// The request is stored and will be applied; reporting it pending
		// is true, where a 503 would only provoke a retry.
		g.log.Warn("reading outcome after wait", zap.String("trace_id", tid), zap.Error(err))
		return s, nil
	}
	if ok {
		// A decision made before this submission was accepted is a
		// resubmission's (one the gateway did not know of, replayed by
		// the workers), not this one's.
		s.state = state{decided: true, t: t}
		s.earlier = t.ProcessedAt.Before(r.AcceptedAt)
	}
	return s, nil
}

// publish sends r to the requests stream, timing it.
func (g *Gateway) publish(ctx context.Context, r transfer.Request, tid string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	dup, err := g.queue.Publish(ctx, r, tid)
	result := "ok"
	switch {
	case err != nil:
		result = "error"
	case dup:
		result = "duplicate"
	}
	g.metrics.publish.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return dup, err
}

// resubmit stores r when its id is taken in the stream's dedupe window by a
// message that is neither pending nor decided: a producer's malformed
// message under the same id, dead-lettered or about to be. Answering 202
// on the strength of that duplicate would accept a request that is never
// applied.
func (g *Gateway) resubmit(ctx context.Context, r transfer.Request, tid string) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	_, err := g.queue.Resubmit(ctx, r, tid)
	result := "resubmitted"
	if err != nil {
		result = "error"
	}
	g.metrics.publish.WithLabelValues(result).Observe(time.Since(start).Seconds())
	g.log.Info("request id taken by a message that is not a request; stored under a message id of its own",
		zap.Stringer("id", r.ID), zap.String("trace_id", tid), zap.Error(err))
	return err
}

// countWait records how a wait ended, for the wait_outcomes metric.
func (g *Gateway) countWait(s submission, conflict bool) {
	if !s.waited {
		return
	}
	outcome := "timeout"
	switch {
	case conflict:
		outcome = "conflict"
	case s.decided:
		outcome = string(s.t.Status)
	case g.draining.Load():
		outcome = "drained"
	}
	g.metrics.waits.WithLabelValues(outcome).Inc()
}

// postTransfer serves POST /v1/transfers.
func (g *Gateway) postTransfer(c *fiber.Ctx) error { return g.submitV1(c, wire.Transfer) }

// postDeposit serves POST /v1/deposits.
func (g *Gateway) postDeposit(c *fiber.Ctx) error { return g.submitV1(c, wire.Deposit) }

// postWithdrawal serves POST /v1/withdrawals.
func (g *Gateway) postWithdrawal(c *fiber.Ctx) error { return g.submitV1(c, wire.Withdrawal) }

func (g *Gateway) submitV1(c *fiber.Ctx, form *wire.Form) error {
	body, p := jsonBody(c, false)
	if p != nil {
		return p
	}
	r, p := decode(form, body)
	if p != nil {
		return p
	}
	ctx := c.UserContext()
	if p := g.check(ctx, &r); p != nil {
		return p
	}
	return g.answerV1(c, r, "/v1/transfers/")
}

// answerV1 submits a checked request and answers for it: 200, 201, 202,
// 409 or 422, with Location at locationPrefix + id.
func (g *Gateway) answerV1(c *fiber.Ctx, r transfer.Request, locationPrefix string) error {
	ctx := c.UserContext()
	wait, preferred := g.preferWait(c)
	s, err := g.submit(ctx, r, traceID(c), wait)
	if err != nil {
		g.log.Warn("submit failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return submitProblem(err)
	}
	if preferred && !s.overCap {
		c.Set(headerPreferenceApplied, "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	location := locationPrefix + r.ID.String()
	switch {
	case s.decided && s.t.Fingerprint != r.Fingerprint():
		g.countWait(s, true)
		return conflict(g.decidedBody(ctx, s.t))
	case s.decided:
		g.countWait(s, false)
		body := g.decidedBody(ctx, s.t)
		if s.t.Status == transfer.StatusRejected {
			p := fieldProblem(s.t.Reason, fieldOf(s.t.Reason), "The request was rejected: "+string(s.t.Reason)+".")
			p.Transfer = body
			return p
		}
		c.Set(fiber.HeaderLocation, location)
		status := fiber.StatusCreated
		if s.earlier {
			status = fiber.StatusOK
		}
		return c.Status(status).JSON(body)
	case !s.own && s.p.Request.Fingerprint() != r.Fingerprint():
		g.countWait(s, true)
		return conflict(g.requestBody(ctx, s.p.Request, statusPending, s.p.AcceptedAt))
	}
	g.countWait(s, false)
	c.Set(fiber.HeaderLocation, location)
	return c.Status(fiber.StatusAccepted).JSON(g.requestBody(ctx, s.p.Request, statusPending, s.p.AcceptedAt))
}

// conflict answers a resubmission whose fields differ from the request
// already stored under its id, showing that request.
func conflict(earlier *transferBody) *Problem {
	p := fieldProblem(transfer.CodeTransferIDConflict, "id",
		"The id was already used for a request with different fields; use a new id for a new request.")
	p.Transfer = earlier
	return p
}

// getTransfer serves GET /v1/transfers/{id}.
func (g *Gateway) getTransfer(c *fiber.Ctx) error {
	id, p := pathID(c, "id")
	if p != nil {
		return p
	}
	ctx := c.UserContext()
	st, err := g.lookup(ctx, id)
	if err != nil {
		g.log.Warn("transfer lookup failed", zap.String("trace_id", traceID(c)), zap.Error(err))
		return unavailable("The transfer cannot be looked up right now.")
	}
	switch {
	case st.decided:
		return c.JSON(g.decidedBody(ctx, st.t))
	case st.pending:
		return c.JSON(g.requestBody(ctx, st.p.Request, statusPending, st.p.AcceptedAt))
	}
	return problem(CodeNotFound, "No request with this id was accepted.")
}

// defaultDecidedIDs bounds the decided ids a gateway remembers: 64k ids
// hold about 4 MiB, and a resubmission usually follows its original within
// minutes.
const defaultDecidedIDs = 1 << 16

// decidedIDs remembers, up to a bound, the ids this gateway has seen
// decided in the database, so that a submission reads the database first
// only for an id it knows to be decided. A new id is then published at
// once. An id decided but forgotten (evicted, decided through another
// gateway, or before a restart) is published again: within the stream's
// dedupe window the duplicate is dropped and the gateway answers from the
// database; past it the workers replay the recorded outcome, which a
// waiting client sees. Either way the database applies an id at most once.
type decidedIDs struct {
	mu   sync.Mutex
	ids  map[uuid.UUID]struct{}
	ring []uuid.UUID // insertion order, for eviction
	next int         // the slot the next id takes
}

func newDecidedIDs(n int) *decidedIDs {
	return &decidedIDs{ids: make(map[uuid.UUID]struct{}, n), ring: make([]uuid.UUID, n)}
}

// has reports whether id was seen decided and is still remembered.
func (d *decidedIDs) has(id uuid.UUID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ids[id]
	return ok
}

// add remembers id, forgetting the oldest one when full.
func (d *decidedIDs) add(id uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.ids[id]; ok {
		return
	}
	if old := d.ring[d.next]; old != uuid.Nil {
		delete(d.ids, old)
	}
	d.ring[d.next] = id
	d.ids[id] = struct{}{}
	d.next = (d.next + 1) % len(d.ring)
}
