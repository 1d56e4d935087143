package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// Store is what the worker needs from the ledger; *postgres.Store has it.
type Store interface {
	// ApplyBatch applies requests in order in one transaction. On error
	// nothing was committed and the same batch may be retried.
	ApplyBatch(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error)
	// Currencies returns the currencies table, used to format the amounts
	// of outcomes; one of codes missing from a cached table makes the
	// store look again.
	Currencies(ctx context.Context, codes ...string) (transfer.Currencies, error)
	// ExpireHolds expires up to limit holds due at now and returns how
	// many it expired; safe to call from several workers at once.
	ExpireHolds(ctx context.Context, now time.Time, limit int) (int, error)
}

// Consumer is what the worker needs from the bus; *natsbus.Consumer has
// it. It hands out batches of decoded requests and settles them.
type Consumer interface {
	// ID is the worker's membership id.
	ID() string
	// BatchSize is the most requests one batch holds.
	BatchSize() int
	// Run hands batches to handle until ctx ends, then finishes the
	// batches in hand (see natsbus.Consumer.Run).
	Run(ctx context.Context, handle natsbus.Handler) error
	// Started is closed once Run pulls.
	Started() <-chan struct{}
	// Owned lists the partitions being pulled.
	Owned() []int
	// PublishOutcomes publishes the outcomes of ds and waits until they
	// are stored (or isolated).
	PublishOutcomes(ctx context.Context, ds []*natsbus.Delivery, outcomes []transfer.Outcome,
		currencies transfer.Currencies, tr natsbus.OutcomeTrace) error
	// Refuse dead-letters a request the store refuses for good.
	Refuse(ctx context.Context, d *natsbus.Delivery, err error) error
}

// Worker applies the requests its consumer hands out to the store, in
// batches, and has the outcomes published and the requests acked. Create
// it with New and run it with Run.
type Worker struct {
	cfg      Config
	consumer Consumer
	store    Store
	log      *zap.Logger
	m        *metrics
	// expiry counts what the sweep of due holds did.
	expiry *expiryMetrics
	// tracer is nil when tracing is off.
	tracer trace.Tracer

	jobs    chan *job
	running atomic.Bool
}

// New checks cfg and builds a worker on a consumer and a store. It does no
// I/O; Run does. reg receives the worker's metrics (nil: not exported).
func New(consumer Consumer, store Store, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Worker, error) {
	if consumer == nil || store == nil {
		return nil, fmt.Errorf("%w: a consumer and a store are required", ErrInvalidConfig)
	}
	cfg, err := cfg.withDefaults(consumer.BatchSize())
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	em, err := newExpiryMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	var tracer trace.Tracer
	if cfg.TracerProvider != nil {
		tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	return &Worker{
		tracer:   tracer,
		cfg:      cfg,
		consumer: consumer,
		store:    store,
		log:      log.With(zap.String("worker", consumer.ID())),
		m:        m,
		expiry:   em,
		jobs:     make(chan *job),
	}, nil
}

// ID is the worker's membership id.
func (w *Worker) ID() string { return w.consumer.ID() }

// Started is closed once the worker has joined the membership and pulls.
func (w *Worker) Started() <-chan struct{} { return w.consumer.Started() }

// Owned lists the partitions this worker is pulling (for tests and status).
func (w *Worker) Owned() []int { return w.consumer.Owned() }

// Run starts the worker and runs it until ctx ends: it joins the
// membership, applies the batches of the partitions assigned to it and
// sweeps due holds. Cancelling ctx is the soft stop: Run stops pulling,
// finishes the batches in hand (commit, publish outcomes, ack), hands its
// partitions over, leaves the membership and returns nil. If the
// consumer's stop timeout passes first, or its connection closes, what is
// in hand is abandoned unacked (it will be redelivered and applied once)
// and Run returns natsbus.ErrAbandoned. A start-up failure is returned at
// once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	if err := w.loadPrecisions(ctx); err != nil {
		return err
	}
	// consumed closes when the consumer has returned: no batch is in
	// hand any more, and the writers may go.
	consumed := make(chan struct{})
	var g errgroup.Group
	g.Go(func() error {
		defer close(consumed)
		return w.consumer.Run(ctx, w.handle)
	})
	for i := 0; i < w.cfg.Concurrency; i++ {
		g.Go(func() error {
			w.writer(consumed)
			return nil
		})
	}
	g.Go(func() error {
		w.expiryLoop(ctx, consumed)
		return nil
	})
	return g.Wait()
}

// handle gives one partition's batch to the writers and waits until it is
// settled. ctx ends at the hard stop.
func (w *Worker) handle(ctx context.Context, b *natsbus.Batch) error {
	j := &job{ctx: ctx, batch: b, done: make(chan error, 1)}
	select {
	case w.jobs <- j:
	case <-ctx.Done():
		return errAborted
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return errAborted
	}
}

func (w *Worker) loadPrecisions(ctx context.Context) error {
	if _, err := w.store.Currencies(ctx); err != nil {
		return fmt.Errorf("worker: load currencies: %w", err)
	}
	return nil
}

// precisionsFor returns the currencies table to format outcomes with. The
// store caches it and looks again when an applied outcome names a currency
// the cached table lacks (added since it was read); if it cannot, amounts
// are written as stored.
func (w *Worker) precisionsFor(ctx context.Context, outcomes []transfer.Outcome) transfer.Currencies {
	// A batch is mostly of one or a few currencies: a code equal to the
	// one before it is not listed again.
	var codes []string
	for _, o := range outcomes {
		if o.Transfer.Status == transfer.StatusApplied &&
			(len(codes) == 0 || codes[len(codes)-1] != o.Transfer.Currency) {
			codes = append(codes, o.Transfer.Currency)
		}
	}
	cs, err := w.store.Currencies(ctx, codes...)
	if err != nil {
		w.log.Warn("reload currencies", zap.Error(err))
	}
	return cs
}
