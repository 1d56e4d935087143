package worker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus series; docs/messaging.md lists them.
type metrics struct {
	batchSize       prometheus.Histogram
	commitSeconds   prometheus.Histogram
	outcomes        *prometheus.CounterVec
	replays         prometheus.Counter
	deadLetters     *prometheus.CounterVec
	applyErrors     prometheus.Counter
	publishErrors   prometheus.Counter
	redeliveries    prometheus.Counter
	isolated        *prometheus.CounterVec
	foreignOutcomes prometheus.Counter
	ownedPartition  prometheus.Gauge
	consumerLag     *prometheus.GaugeVec
	redelivered     *prometheus.GaugeVec
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
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wallet_worker_dead_letters_total", Help: "Poison messages dead-lettered, by reason.",
		}, []string{"reason"}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_apply_errors_total", Help: "Failed ApplyBatch calls (retried).",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_publish_errors_total", Help: "Failed outcome or dead-letter publishes (retried).",
		}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_redeliveries_total", Help: "Messages received that had been delivered before.",
		}),
		isolated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wallet_worker_isolated_total",
			Help: "Requests set aside for an error no retry can cure, so that their partition goes on, by why.",
		}, []string{"why"}),
		foreignOutcomes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wallet_worker_foreign_outcomes_total",
			Help: "Outcome subjects of decided requests found holding a message this service did not write.",
		}),
		ownedPartition: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wallet_worker_owned_partitions", Help: "Partitions this worker pulls.",
		}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wallet_worker_consumer_pending", Help: "Messages of an owned partition not yet delivered or not yet acked.",
		}, []string{"partition"}),
		redelivered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wallet_worker_consumer_redelivered", Help: "Messages of an owned partition delivered more than once and not yet acked.",
		}, []string{"partition"}),
	}
	for _, c := range []prometheus.Collector{m.batchSize, m.commitSeconds, m.outcomes, m.replays, m.deadLetters,
		m.applyErrors, m.publishErrors, m.redeliveries, m.isolated, m.foreignOutcomes, m.ownedPartition, m.consumerLag, m.redelivered} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func partitionLabel(p int) string { return strconv.Itoa(p) }
