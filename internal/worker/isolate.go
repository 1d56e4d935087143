package worker

import (
	"context"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/transfer"
)

// isolate applies items after the database refused them together for a
// reason that no retry cures (err): it bisects them, applying each half in
// order, until every request the database refuses on its own is found.
// Those are dead-lettered as store_refused, undecided, and counted; the
// others are applied. It returns the applied items and their outcomes, in
// order. Halves are applied one after the other, so each partition's
// requests keep their order.
func (w *Worker) isolate(ctx context.Context, items []*held, err error) ([]*held, []transfer.Outcome, error) {
	if len(items) == 1 {
		it := items[0]
		meta, merr := it.msg.Metadata()
		if merr != nil {
			return nil, nil, merr
		}
		w.isolated(w.log, isolatedStoreRefused, it.msg, meta, it.requestID, err, zap.Stringer("id", it.req.ID))
		if derr := w.deadLetter(w.log, it.msg, meta, ReasonStoreRefused, err.Error()); derr != nil {
			return nil, nil, derr
		}
		return nil, nil, nil
	}
	w.log.Warn("the database refuses a batch, bisecting it to find the request at fault",
		zap.Int("requests", len(items)), zap.Error(err))
	mid := len(items) / 2
	var applied []*held
	var outcomes []transfer.Outcome
	for _, half := range [][]*held{items[:mid], items[mid:]} {
		reqs := make([]transfer.Request, len(half))
		for i, it := range half {
			reqs[i] = it.req
		}
		got, err := w.apply(ctx, reqs)
		if permanentStore(err) {
			var sub []*held
			sub, got, err = w.isolate(ctx, half, err)
			half = sub
		}
		if err != nil {
			return nil, nil, err
		}
		applied = append(applied, half...)
		outcomes = append(outcomes, got...)
	}
	return applied, outcomes, nil
}
