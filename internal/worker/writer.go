package worker

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// job is one partition's batch handed to the writers. A partition has at
// most one job in flight, so writers may merge jobs of different partitions
// into one transaction without reordering any partition.
type job struct {
	// ctx ends at the hard stop.
	ctx   context.Context
	batch *natsbus.Batch
	done  chan error
}

// writer takes a job, merges whatever other jobs are waiting (up to
// MaxMerge requests), and commits them together, until consumed closes.
func (w *Worker) writer(consumed <-chan struct{}) {
	for {
		var first *job
		select {
		case first = <-w.jobs:
		case <-consumed:
			return
		}
		jobs := []*job{first}
		n := len(first.batch.Requests)
	merge:
		for n < w.cfg.MaxMerge {
			select {
			case j := <-w.jobs:
				jobs = append(jobs, j)
				n += len(j.batch.Requests)
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

// commit applies the jobs' requests in one ApplyBatch, has every outcome
// published, and only then acks the batches. The database is retried for
// as long as it takes (a database outage must not reorder or reject
// anything); only the hard stop abandons the batch, unacked.
func (w *Worker) commit(jobs []*job) (err error) {
	n := 0
	for _, j := range jobs {
		n += len(j.batch.Requests)
	}
	reqs := make([]transfer.Request, 0, n)
	items := make([]*natsbus.Delivery, 0, n)
	for _, j := range jobs {
		for _, d := range j.batch.Requests {
			reqs = append(reqs, d.Request)
			items = append(items, d)
		}
	}
	ctx, tr := w.startBatch(jobs[0].ctx, items)
	defer func() { tr.end(err) }()

	outcomes, err := w.apply(ctx, reqs)
	if errors.Is(err, transfer.ErrRefused) {
		items, outcomes, err = w.isolate(ctx, items, err)
	}
	if err != nil {
		return err
	}
	tr.decided(items, outcomes)
	var ot natsbus.OutcomeTrace
	if tr != nil {
		ot = tr
	}
	if err := w.consumer.PublishOutcomes(ctx, items, outcomes, w.precisionsFor(ctx, outcomes), ot); err != nil {
		if ctx.Err() != nil {
			return errAborted
		}
		return err
	}
	for _, j := range jobs {
		j.batch.Ack()
	}
	// Outcomes are counted by runs of one status and reason (mostly one
	// run per batch), so the series is looked up per run, not per request.
	var run struct {
		status transfer.Status
		reason transfer.Code
		n      int
	}
	count := func() {
		if run.n > 0 {
			w.m.outcomes.WithLabelValues(string(run.status), string(run.reason)).Add(float64(run.n))
		}
	}
	for i, o := range outcomes {
		it := items[i]
		switch {
		case o.Replayed:
			w.m.replays.Inc()
		case run.n > 0 && o.Transfer.Status == run.status && o.Transfer.Reason == run.reason:
			run.n++
		default:
			count()
			run.status, run.reason, run.n = o.Transfer.Status, o.Transfer.Reason, 1
		}
		if ce := w.log.Check(zap.DebugLevel, "request decided"); ce != nil {
			ce.Write(zap.Stringer("id", it.Request.ID), zap.String("trace_id", it.TraceID),
				zap.String("status", string(o.Status())), zap.String("reason", string(o.Reason())),
				zap.Bool("replayed", o.Replayed))
		}
	}
	count()
	return nil
}

// apply calls ApplyBatch until it succeeds, fails for a reason that no
// retry cures (transfer.ErrRefused), or ctx (the hard stop, carrying the
// batch's span) ends.
func (w *Worker) apply(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	wait := 100 * time.Millisecond
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
		if ctx.Err() != nil {
			return nil, errAborted
		}
		w.m.applyErrors.Inc()
		if errors.Is(err, transfer.ErrRefused) {
			return nil, err
		}
		w.log.Warn("apply batch failed, retrying the same batch", zap.Int("requests", len(reqs)),
			zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, errAborted
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
