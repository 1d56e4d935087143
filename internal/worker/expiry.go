package worker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

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
func (w *Worker) expiryLoop() {
	defer w.loopWG.Done()
	t := time.NewTicker(w.cfg.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-w.loopStop:
			return
		case <-t.C:
		}
		w.sweep()
	}
}

// sweep expires due holds in rounds of ExpireBatch until a round finds
// fewer, or the worker stops.
func (w *Worker) sweep() {
	for {
		select {
		case <-w.loopStop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(w.hardCtx, w.cfg.opTimeout()+5*time.Second)
		n, err := w.store.ExpireHolds(ctx, time.Now(), w.cfg.ExpireBatch)
		cancel()
		if err != nil {
			if w.hardCtx.Err() == nil {
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
