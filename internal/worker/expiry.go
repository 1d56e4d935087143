package worker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// sweepTimeout bounds one round of the sweep.
const sweepTimeout = 7 * time.Second

// expiryMetrics are the sweep's series; docs/messaging.md lists them.
type expiryMetrics struct {
	expired prometheus.Counter
	errors  prometheus.Counter
}

func newExpiryMetrics(reg prometheus.Registerer) (*expiryMetrics, error) {
	m := &expiryMetrics{
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_holds_expired_total", Help: "Holds this worker's sweep expired after their timeout.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_expiry_errors_total", Help: "Failed sweeps of due holds (retried at the next tick).",
		}),
	}
	for _, c := range []prometheus.Collector{m.expired, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// expiryLoop releases holds whose timeout has passed, every ExpireInterval,
// whether requests are flowing or not: a post or void of a due hold expires
// it too, but a hold nobody names would otherwise stay reserved for ever.
// Every worker sweeps, independently of the partitions it owns, so expiry
// goes on through restarts and takeovers; the store serialises concurrent
// sweeps and posts under the sender's lock, so a hold is expired once and
// never after a post that won. The time is this process's wall clock, the
// same clock ApplyBatch decides posts with.
//
// It ends when ctx does, or consumed closes (the worker stopped).
func (w *Worker) expiryLoop(ctx context.Context, consumed <-chan struct{}) {
	t := time.NewTicker(w.cfg.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-consumed:
			return
		case <-t.C:
		}
		w.sweep(ctx)
	}
}

// sweep expires due holds in rounds of ExpireBatch until a round finds
// fewer, or ctx ends. A round under way when ctx ends finishes, within
// its own timeout.
func (w *Worker) sweep(ctx context.Context) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sweepTimeout)
		n, err := w.store.ExpireHolds(rctx, time.Now(), w.cfg.ExpireBatch)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.expiry.errors.Inc()
				w.log.Warn("expire holds", zap.Error(err))
			}
			return
		}
		if n > 0 {
			w.expiry.expired.Add(float64(n))
			w.log.Debug("holds expired", zap.Int("count", n))
		}
		if n < w.cfg.ExpireBatch {
			return
		}
	}
}
