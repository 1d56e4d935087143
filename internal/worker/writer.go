package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// job is one partition's batch handed to the writers. A partition has at
// most one job in flight, so writers may merge jobs of different partitions
// into one transaction without reordering any partition.
type job struct {
	partition int
	items     []held
	done      chan error
}

// writer takes a job, merges whatever other jobs are waiting (up to
// MaxMerge requests), and commits them together.
func (w *Worker) writer() {
	defer w.writerWG.Done()
	for {
		var first *job
		select {
		case first = <-w.jobs:
		case <-w.writerQ:
			return
		}
		jobs := []*job{first}
		n := len(first.items)
	merge:
		for n < w.cfg.MaxMerge {
			select {
			case j := <-w.jobs:
				jobs = append(jobs, j)
				n += len(j.items)
			default:
				break merge
			}
		}
		err := w.commit(jobs)
		for _, j := range jobs {
			j.done <- err
		}
	}
}

// commit applies the jobs' requests in one ApplyBatch, publishes every
// outcome, waits for the PubAcks, and only then acks the messages. The
// database is retried for as long as it takes (a database outage must not
// reorder or reject anything); only the hard stop abandons the batch,
// unacked.
func (w *Worker) commit(jobs []*job) (err error) {
	var msgs []jetstream.Msg
	var reqs []transfer.Request
	var items []*held
	for _, j := range jobs {
		for i := range j.items {
			it := &j.items[i]
			msgs = append(msgs, it.msg)
			reqs = append(reqs, it.req)
			items = append(items, it)
		}
	}
	ctx, tr := w.startBatch(items)
	defer func() { tr.end(err) }()
	stop := keepInProgress(msgs, w.cfg.progressEvery())
	defer stop()

	outcomes, err := w.apply(ctx, reqs)
	if permanentStore(err) {
		items, outcomes, err = w.isolate(ctx, items, err)
	}
	if err != nil {
		return err
	}
	tr.decided(items, outcomes)
	if err := w.publishOutcomes(items, outcomes, tr); err != nil {
		return err
	}
	stop()
	for _, it := range items {
		// A lost ack only means a redelivery, which replays harmlessly.
		_ = it.msg.Ack()
	}
	for i, o := range outcomes {
		it := items[i]
		if o.Replayed {
			w.m.replays.Inc()
		} else {
			w.m.outcomes.WithLabelValues(string(o.Transfer.Status), string(o.Transfer.Reason)).Inc()
		}
		if ce := w.log.Check(zap.DebugLevel, "request decided"); ce != nil {
			ce.Write(zap.Stringer("id", it.req.ID), zap.String("request_id", it.requestID),
				zap.String("status", string(o.Status())), zap.String("reason", string(o.Reason())),
				zap.Bool("replayed", o.Replayed))
		}
	}
	return nil
}

// apply calls ApplyBatch until it succeeds, fails for a reason that no
// retry cures (permanentStore), or the worker is hard-stopped.
// ctx is the hard stop's context, carrying the batch's span.
func (w *Worker) apply(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	backoff := newBackoff(100*time.Millisecond, 5*time.Second)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		outcomes, err := w.store.ApplyBatch(ctx, reqs)
		if err == nil {
			w.m.batchSize.Observe(float64(len(reqs)))
			w.m.commitSeconds.Observe(time.Since(start).Seconds())
			if attempt > 1 {
				w.log.Info("database back, batch applied", zap.Int("attempts", attempt))
			}
			return outcomes, nil
		}
		if w.hardCtx.Err() != nil {
			return nil, errAborted
		}
		w.m.applyErrors.Inc()
		if permanentStore(err) {
			return nil, err
		}
		w.log.Warn("apply batch failed, retrying the same batch", zap.Int("requests", len(reqs)),
			zap.Int("attempt", attempt), zap.Error(err))
		if !backoff.wait(w.hardCtx) {
			return nil, errAborted
		}
	}
}

// outcomeMsg builds the message announcing outcome o of request r. A
// conflict gets a notice on its own subject; everything else publishes the
// id's decision on its outcome subject, at most once: the message id makes a
// re-publish within the dedupe window a duplicate, and the expected
// last-subject-sequence of 0 refuses it after the window. A later decision
// under the id (a retry of a rejection) is published after the first.
func (w *Worker) outcomeMsg(r transfer.Request, o transfer.Outcome, precisions map[string]int32) (*nats.Msg, []jetstream.PublishOpt, error) {
	if o.Conflict {
		fp := r.Fingerprint()
		res := natsbus.ConflictNotice(r, time.Now(), precisions)
		data, err := natsbus.EncodeResult(res)
		if err != nil {
			return nil, nil, err
		}
		m := nats.NewMsg(natsbus.ConflictSubject(r.ID))
		m.Data = data
		return m, []jetstream.PublishOpt{jetstream.WithMsgID(r.ID.String() + ".conflict." + hex.EncodeToString(fp[:8]))}, nil
	}
	data, err := natsbus.EncodeResult(natsbus.ResultFromTransfer(o.Transfer, precisions))
	if err != nil {
		return nil, nil, err
	}
	m := nats.NewMsg(natsbus.ResultSubject(o.Transfer.ID))
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

// publishOutcomes publishes every outcome asynchronously and waits for all
// PubAcks, retrying the failed ones until they are stored. An outcome the
// stream can never store is isolated instead: the request is decided in
// the database, which readers fall back to.
func (w *Worker) publishOutcomes(items []*held, outcomes []transfer.Outcome, tr *batchTrace) error {
	precisions := w.precisionsFor(w.hardCtx, outcomes)
	type pending struct {
		msg  *nats.Msg
		opts []jetstream.PublishOpt
		it   *held
	}
	refused := func(p pending, err error) {
		tr.refused(p.it, err)
		meta, _ := p.it.msg.Metadata()
		w.isolated(w.log, isolatedOutcomeRefused, p.it.msg, meta, p.it.requestID, err,
			zap.Stringer("id", p.it.req.ID), zap.String("outcome_subject", p.msg.Subject))
	}
	todo := make([]pending, 0, len(outcomes))
	for i, o := range outcomes {
		m, opts, err := w.outcomeMsg(items[i].req, o, precisions)
		if err != nil {
			// Encoding our own struct cannot fail; if it did, publishing
			// nothing is better than blocking the partition.
			w.log.Error("encode outcome", zap.Error(err))
			continue
		}
		if items[i].requestID != "" {
			m.Header.Set(natsbus.HeaderRequestID, items[i].requestID)
		}
		tr.startSend(items[i], m)
		todo = append(todo, pending{m, opts, items[i]})
	}
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	for len(todo) > 0 {
		futures := make([]jetstream.PubAckFuture, len(todo))
		var failed []pending
		for i, p := range todo {
			f, err := w.js.PublishMsgAsync(copyMsg(p.msg), p.opts...)
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
				tr.sent(todo[i].it)
			case err := <-f.Err():
				switch {
				case alreadyPublished(err):
					if cerr := w.checkOutcome(todo[i].msg); cerr != nil {
						w.log.Warn("read the stored outcome, retrying", zap.String("subject", todo[i].msg.Subject), zap.Error(cerr))
						failed = append(failed, todo[i])
					}
				case permanentPublish(err):
					refused(todo[i], err)
				default:
					w.log.Warn("publish outcome failed, retrying", zap.String("subject", todo[i].msg.Subject), zap.Error(err))
					failed = append(failed, todo[i])
				}
			case <-w.hardCtx.Done():
				return errAborted
			}
		}
		if len(failed) > 0 {
			w.m.publishErrors.Add(float64(len(failed)))
			if !backoff.wait(w.hardCtx) {
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

// copyMsg gives each publish attempt its own message: the client keeps a
// reference to an in-flight message until its PubAck.
func copyMsg(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	for k, v := range m.Header {
		c.Header[k] = append([]string(nil), v...)
	}
	return c
}
