package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
)

// checkOutcome runs when the results stream refused outcome m because its
// subject already has a message. That is normally this outcome, stored by
// an earlier attempt (a redelivery or replay after the dedupe window); if
// it is anything else, some other client wrote under a decided id, and the
// worker says so (metric, log) instead of taking it as published. It cannot
// replace it; readers of the id fall back to the database. An error means
// the stored message could not be read and the check is to be retried.
func (w *Worker) checkOutcome(m *nats.Msg) error {
	ctx, cancel := context.WithTimeout(w.hardCtx, 5*time.Second)
	defer cancel()
	stored, err := w.results.GetLastMsgForSubject(ctx, m.Subject)
	if err != nil {
		return err
	}
	if sameOutcome(stored.Data, m.Data) {
		return nil
	}
	w.m.foreignOutcomes.Inc()
	w.log.Error("an outcome this worker did not write is stored under a decided id; the database has the decision",
		zap.String("subject", m.Subject), zap.Uint64("stored_seq", stored.Sequence),
		zap.Int("stored_size", len(stored.Data)), zap.Time("stored_at", stored.Time))
	return nil
}

// sameOutcome reports whether two encoded results announce the same
// decision.
func sameOutcome(a, b []byte) bool {
	ra, err := natsbus.DecodeResult(a)
	if err != nil {
		return false
	}
	rb, err := natsbus.DecodeResult(b)
	if err != nil {
		return false
	}
	return ra.ID == rb.ID && ra.Kind == rb.Kind && ra.Status == rb.Status && ra.Reason == rb.Reason &&
		ra.FromAccountID == rb.FromAccountID && ra.ToAccountID == rb.ToAccountID && ra.AccountID == rb.AccountID &&
		ra.Amount == rb.Amount && ra.Currency == rb.Currency &&
		ra.AcceptedAt.Equal(rb.AcceptedAt) && ra.ProcessedAt.Equal(rb.ProcessedAt)
}
