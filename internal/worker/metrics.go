package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus series; docs/messaging.md lists them
// (the consumer registers the series about pulling, dead letters and
// outcome publishing, under the same wallet_worker_ prefix).
type metrics struct {
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	outcomes      *prometheus.CounterVec
	replays       prometheus.Counter
	applyErrors   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wallet_worker_batch_size", Help: "Requests per ApplyBatch call.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wallet_worker_commit_seconds", Help: "Duration of successful ApplyBatch calls.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wallet_worker_outcomes_total", Help: "Requests decided, by status and rejection reason (replays excluded).",
		}, []string{"status", "reason"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_replays_total", Help: "Requests whose id was already decided (redeliveries, resubmissions).",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_apply_errors_total", Help: "Failed ApplyBatch calls (retried).",
		}),
	}
	for _, c := range []prometheus.Collector{m.batchSize, m.commitSeconds, m.outcomes, m.replays, m.applyErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
