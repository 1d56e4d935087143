package natsbus

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// consumerMetrics are the Consumer's series. They keep the worker's names
// (wallet_worker_*), which docs/messaging.md lists, since the consumer
// serves the worker.
type consumerMetrics struct {
	deadLetters     *prometheus.CounterVec
	publishErrors   prometheus.Counter
	redeliveries    prometheus.Counter
	isolated        *prometheus.CounterVec
	foreignOutcomes prometheus.Counter
	ownedPartition  prometheus.Gauge
	consumerLag     *prometheus.GaugeVec
	redelivered     *prometheus.GaugeVec
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	m := &consumerMetrics{
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wallet_worker_dead_letters_total", Help: "Poison messages dead-lettered, by reason.",
		}, []string{"reason"}),
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
	for _, c := range []prometheus.Collector{m.deadLetters, m.publishErrors, m.redeliveries, m.isolated,
		m.foreignOutcomes, m.ownedPartition, m.consumerLag, m.redelivered} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func partitionLabel(p int) string { return strconv.Itoa(p) }
