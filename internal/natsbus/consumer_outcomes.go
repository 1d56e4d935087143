package natsbus

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
)

// Delivery is one delivered, decoded request waiting to be applied.
type Delivery struct {
	// Request is the decoded request; its AcceptedAt is the stream's
	// acceptance time.
	Request transfer.Request
	// TraceID is the producer's trace id when it is valid, else empty.
	TraceID string
	// Subject and Seq are where the request is stored.
	Subject string
	Seq     uint64

	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	settled bool // dead-lettered: terminated, not to be acked
}

// TraceParent is the span context the producer sent the request from;
// invalid when it sent none.
func (d *Delivery) TraceParent() trace.SpanContext {
	return trace.SpanContextFromContext(ExtractTrace(context.Background(), d.msg.Headers()))
}

// Batch is one partition's requests in hand, in stream order.
type Batch struct {
	Partition int
	// Requests are the decoded requests; poison was dead-lettered before
	// the batch was handed out.
	Requests []*Delivery

	c    *Consumer
	msgs []jetstream.Msg
}

// Ack settles the batch's requests that were not refused. Call it only once
// their outcomes are published. A lost ack only means a redelivery, which
// replays harmlessly.
func (b *Batch) Ack() {
	for _, d := range b.Requests {
		if !d.settled {
			_ = d.msg.Ack()
			d.settled = true
		}
	}
}

// OutcomeTrace follows the publishing of outcomes; a nil OutcomeTrace
// does nothing.
type OutcomeTrace interface {
	// Sending returns the context whose span d's outcome message is to
	// carry (nil: none).
	Sending(d *Delivery, subject string) context.Context
	// Sent says d's outcome is stored.
	Sent(d *Delivery)
	// Refused says the stream refused d's outcome for good.
	Refused(d *Delivery, err error)
}

// Refuse sets aside a request the store refuses for a reason no retry
// cures (err): it is dead-lettered as store_refused, undecided, and
// counted, so that its partition goes on without it.
func (c *Consumer) Refuse(ctx context.Context, d *Delivery, err error) error {
	c.isolated(c.log, isolatedStoreRefused, d, err, zap.Stringer("id", d.Request.ID))
	if derr := c.deadLetter(ctx, c.log, d, ReasonStoreRefused, err.Error()); derr != nil {
		return derr
	}
	return nil
}

// outcomeMsg builds the message announcing outcome o of request r. A
// conflict gets a notice on its own subject; everything else publishes the
// id's decision on its outcome subject, at most once: the message id makes a
// re-publish within the dedupe window a duplicate, and the expected
// last-subject-sequence of 0 refuses it after the window. A later decision
// under the id (a retry of a rejection) is published after the first.
func outcomeMsg(r transfer.Request, o transfer.Outcome, currencies transfer.Currencies) (*nats.Msg, []jetstream.PublishOpt, error) {
	if o.Conflict {
		fp := r.Fingerprint()
		res := ConflictNotice(r, time.Now(), currencies)
		data, err := EncodeResult(res)
		if err != nil {
			return nil, nil, err
		}
		m := nats.NewMsg(ConflictSubject(r.ID))
		m.Data = data
		return m, []jetstream.PublishOpt{jetstream.WithMsgID(r.ID.String() + ".conflict." + hex.EncodeToString(fp[:8]))}, nil
	}
	data, err := EncodeResult(ResultFromTransfer(o.Transfer, currencies))
	if err != nil {
		return nil, nil, err
	}
	m := nats.NewMsg(ResultSubject(o.Transfer.ID))
	m.Data = data
	if d := o.Transfer.Decisions; d > 1 {
		// A retry replaced a rejection (the 2020 API's positive
		// idempotency): the subject already holds the rejection, and the
		// new decision goes after it, once per decision.
		return m, []jetstream.PublishOpt{jetstream.WithMsgID(o.Transfer.ID.String() + ".decision." + strconv.Itoa(d))}, nil
	}
	return m, []jetstream.PublishOpt{
		jetstream.WithMsgID(o.Transfer.ID.String()),
		jetstream.WithExpectLastSequencePerSubject(0),
	}, nil
}

// PublishOutcomes publishes the outcome of each of ds (outcomes[i] is
// ds[i]'s) asynchronously and waits for all PubAcks, retrying the failed
// ones until they are stored or ctx (the hard stop) ends. An outcome the
// stream can never store is isolated instead: the request is decided in
// the database, which readers fall back to. currencies formats amounts.
func (c *Consumer) PublishOutcomes(ctx context.Context, ds []*Delivery, outcomes []transfer.Outcome, currencies transfer.Currencies, tr OutcomeTrace) error {
	type unacked struct {
		msg  *nats.Msg
		opts []jetstream.PublishOpt
		d    *Delivery
	}
	refused := func(p unacked, err error) {
		if tr != nil {
			tr.Refused(p.d, err)
		}
		c.isolated(c.log, isolatedOutcomeRefused, p.d, err,
			zap.Stringer("id", p.d.Request.ID), zap.String("outcome_subject", p.msg.Subject))
	}
	todo := make([]unacked, 0, len(outcomes))
	for i, o := range outcomes {
		m, opts, err := outcomeMsg(ds[i].Request, o, currencies)
		if err != nil {
			// Encoding our own struct cannot fail; if it did, publishing
			// nothing is better than blocking the partition.
			c.log.Error("encode outcome", zap.Error(err))
			continue
		}
		if ds[i].TraceID != "" {
			m.Header.Set(HeaderTraceID, ds[i].TraceID)
		}
		if tr != nil {
			if sctx := tr.Sending(ds[i], m.Subject); sctx != nil {
				InjectTrace(sctx, m.Header)
			}
		}
		todo = append(todo, unacked{m, opts, ds[i]})
	}
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	for len(todo) > 0 {
		futures := make([]jetstream.PubAckFuture, len(todo))
		var failed []unacked
		for i, p := range todo {
			f, err := c.js.PublishMsgAsync(copyMsg(p.msg), p.opts...)
			if err != nil {
				if permanentPublish(err) {
					refused(p, err)
				} else {
					failed = append(failed, p)
				}
				continue
			}
			futures[i] = f
		}
		for i, f := range futures {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
				if tr != nil {
					tr.Sent(todo[i].d)
				}
			case err := <-f.Err():
				switch {
				case alreadyPublished(err):
					if cerr := c.checkOutcome(ctx, todo[i].msg); cerr != nil {
						c.log.Warn("read the stored outcome, retrying", zap.String("subject", todo[i].msg.Subject), zap.Error(cerr))
						failed = append(failed, todo[i])
					}
				case permanentPublish(err):
					refused(todo[i], err)
				default:
					c.log.Warn("publish outcome failed, retrying", zap.String("subject", todo[i].msg.Subject), zap.Error(err))
					failed = append(failed, todo[i])
				}
			case <-ctx.Done():
				return errAborted
			}
		}
		if len(failed) > 0 {
			c.m.publishErrors.Add(float64(len(failed)))
			if !backoff.wait(ctx) {
				return errAborted
			}
		}
		todo = failed
	}
	return nil
}

// alreadyPublished reports a publish refused because the outcome subject
// already has a message: its own, or a foreign one (see checkOutcome).
func alreadyPublished(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// permanentPublish reports a publish that no retry of the same message can
// make succeed: too large for the server or the stream, or otherwise
// refused as a bad request. A refused expectation on the outcome subject
// is not one of these (see alreadyPublished).
func permanentPublish(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrHeadersNotSupported) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 400 is the server's verdict on the message; 503 and the like
		// are about the stream's state (no leader, store failing).
		return apiErr.Code == 400 && !alreadyPublished(err)
	}
	return false
}

// checkOutcome runs when the results stream refused outcome m because its
// subject already has a message. That is normally this outcome, stored by
// an earlier attempt (a redelivery or replay after the dedupe window); if
// it is anything else, some other client wrote under a decided id, and the
// consumer says so (metric, log) instead of taking it as published. It
// cannot replace it; readers of the id fall back to the database. An error
// means the stored message could not be read and the check is to be
// retried.
func (c *Consumer) checkOutcome(ctx context.Context, m *nats.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stored, err := c.results.GetLastMsgForSubject(ctx, m.Subject)
	if err != nil {
		return err
	}
	if sameOutcome(stored.Data, m.Data) {
		return nil
	}
	c.m.foreignOutcomes.Inc()
	c.log.Error("an outcome this worker did not write is stored under a decided id; the database has the decision",
		zap.String("subject", m.Subject), zap.Uint64("stored_seq", stored.Sequence),
		zap.Int("stored_size", len(stored.Data)), zap.Time("stored_at", stored.Time))
	return nil
}

// sameOutcome reports whether two encoded results announce the same
// decision.
func sameOutcome(a, b []byte) bool {
	ra, err := DecodeResult(a)
	if err != nil {
		return false
	}
	rb, err := DecodeResult(b)
	if err != nil {
		return false
	}
	return ra.ID == rb.ID && ra.Kind == rb.Kind && ra.Status == rb.Status && ra.Reason == rb.Reason &&
		ra.FromAccountID == rb.FromAccountID && ra.ToAccountID == rb.ToAccountID && ra.AccountID == rb.AccountID &&
		ra.Amount == rb.Amount && ra.Currency == rb.Currency &&
		ra.AcceptedAt.Equal(rb.AcceptedAt) && ra.ProcessedAt.Equal(rb.ProcessedAt)
}
