package worker

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// isolate applies items after the database refused them together for a
// reason that no retry cures (err): it bisects them, applying each half in
// order, until every request the database refuses on its own is found.
// Those are dead-lettered as store_refused, undecided, and counted; the
// others are applied. It returns the applied items and their outcomes, in
// order. Halves are applied one after the other, so each partition's
// requests keep their order.
func (w *Worker) isolate(ctx context.Context, items []*natsbus.Delivery, err error) ([]*natsbus.Delivery, []transfer.Outcome, error) {
	if len(items) == 1 {
		if derr := w.consumer.Refuse(ctx, items[0], err); derr != nil {
			if ctx.Err() != nil {
				return nil, nil, errAborted
			}
			return nil, nil, derr
		}
		return nil, nil, nil
	}
	w.log.Warn("the database refuses a batch, bisecting it to find the request at fault",
		zap.Int("requests", len(items)), zap.Error(err))
	mid := len(items) / 2
	var applied []*natsbus.Delivery
	var outcomes []transfer.Outcome
	for _, half := range [][]*natsbus.Delivery{items[:mid], items[mid:]} {
		reqs := make([]transfer.Request, len(half))
		for i, it := range half {
			reqs[i] = it.Request
		}
		got, err := w.apply(ctx, reqs)
		if errors.Is(err, transfer.ErrRefused) {
			var sub []*natsbus.Delivery
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
