package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// Store is what the worker needs from the ledger; *postgres.Store has it.
type Store interface {
	// ApplyBatch applies requests in order in one transaction. On error
	// nothing was committed and the same batch may be retried.
	ApplyBatch(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error)
	// Currencies lists the currencies and their precisions, used to format
	// the amounts of outcomes.
	Currencies(ctx context.Context) ([]postgres.Currency, error)
	// ExpireHolds expires up to limit holds due at now and returns how
	// many it expired; safe to call from several workers at once.
	ExpireHolds(ctx context.Context, now time.Time, limit int) (int, error)
}

// Worker consumes the requests stream. Create it with New, run it with Start
// and end it with Stop.
type Worker struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	store Store
	log   *zap.Logger
	m     *metrics
	// expiry counts what the sweep of due holds did.
	expiry *expiryMetrics
	// tracer is nil when tracing is off.
	tracer trace.Tracer

	requests      jetstream.Stream
	results       jetstream.Stream
	members       jetstream.KeyValue
	membersStream jetstream.Stream

	precisions atomic.Pointer[map[string]int32]

	jobs chan *job

	// hardCtx ends when Stop's deadline passes: everything in hand is
	// abandoned unacked.
	hardCtx    context.Context
	hardCancel context.CancelFunc

	mu      sync.Mutex
	started bool
	stopped bool
	parts   map[int]*partition
	view    []string // the member list partitions were last assigned from

	loopStop chan struct{} // closes the membership, purge and expiry loops
	loopWG   sync.WaitGroup
	partWG   sync.WaitGroup
	writerWG sync.WaitGroup
	writerQ  chan struct{} // closes the writers

	hooks testHooks
}

// testHooks let tests stop a worker at a chosen point; unset in production.
type testHooks struct {
	// beforeFinish runs when a partition is released, before it applies
	// what was delivered while its pull drained.
	beforeFinish func(partition int)
}

// New checks cfg and builds a worker on an open NATS connection. It does no
// I/O; Start does. reg receives the worker's metrics (nil: not exported).
func New(nc *nats.Conn, store Store, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Worker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if nc == nil || store == nil {
		return nil, fmt.Errorf("%w: a NATS connection and a store are required", ErrInvalidConfig)
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
	js, err := jetstream.New(nc,
		// A PubAck that never comes must not hold a batch forever.
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncMaxPending(4*cfg.MaxMerge),
	)
	if err != nil {
		return nil, fmt.Errorf("worker jetstream: %w", err)
	}
	hardCtx, hardCancel := context.WithCancel(context.Background())
	var tracer trace.Tracer
	if cfg.TracerProvider != nil {
		tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	return &Worker{
		tracer:     tracer,
		cfg:        cfg,
		nc:         nc,
		js:         js,
		store:      store,
		log:        log.With(zap.String("worker", cfg.ID)),
		m:          m,
		expiry:     em,
		jobs:       make(chan *job),
		hardCtx:    hardCtx,
		hardCancel: hardCancel,
		parts:      make(map[int]*partition),
		loopStop:   make(chan struct{}),
		writerQ:    make(chan struct{}),
	}, nil
}

// ID is the worker's membership id.
func (w *Worker) ID() string { return w.cfg.ID }

// Start ensures the streams, consumers and membership bucket exist (safe
// when several processes start at once), joins the membership and starts
// pulling the partitions assigned to it. It returns once the worker runs;
// ctx bounds only the start-up.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return ErrStarted
	}
	w.started = true
	w.mu.Unlock()

	if err := natsbus.EnsureStreams(ctx, w.js, w.cfg.Streams); err != nil {
		return err
	}
	if err := natsbus.EnsureConsumers(ctx, w.js, w.consumerConfig()); err != nil {
		return err
	}
	var err error
	if w.requests, err = w.js.Stream(ctx, natsbus.RequestsStream); err != nil {
		return fmt.Errorf("worker: requests stream: %w", err)
	}
	if w.results, err = w.js.Stream(ctx, natsbus.ResultsStream); err != nil {
		return fmt.Errorf("worker: results stream: %w", err)
	}
	if err := w.loadPrecisions(ctx); err != nil {
		return err
	}
	if w.members, err = w.ensureMembersBucket(ctx); err != nil {
		return err
	}
	if w.membersStream, err = w.js.Stream(ctx, "KV_"+w.cfg.MembersBucket); err != nil {
		return fmt.Errorf("worker: members stream: %w", err)
	}
	if err := w.heartbeat(ctx); err != nil {
		return err
	}

	for i := 0; i < w.cfg.Concurrency; i++ {
		w.writerWG.Add(1)
		go w.writer()
	}
	// Assign right away rather than a heartbeat later.
	w.rebalance(ctx)
	w.loopWG.Add(4)
	go w.membershipLoop()
	go w.purgeLoop()
	go w.reconnectLoop()
	go w.expiryLoop()
	w.log.Info("worker started",
		zap.Int("partitions", w.cfg.Streams.Partitions), zap.Int("batch_size", w.cfg.BatchSize),
		zap.Int("concurrency", w.cfg.Concurrency), zap.Duration("ack_wait", w.cfg.AckWait),
		zap.Duration("pinned_ttl", w.cfg.PinnedTTL))
	return nil
}

// Stop finishes the batches in hand (commit, publish outcomes, ack), stops
// pulling, hands its partitions over and leaves the membership. If ctx ends
// first it abandons what is in hand unacked (it will be redelivered and
// applied once) and returns ctx's error.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	if !w.started {
		w.mu.Unlock()
		return ErrNotStarted
	}
	if w.stopped {
		w.mu.Unlock()
		return nil
	}
	w.stopped = true
	w.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		close(w.loopStop)
		w.loopWG.Wait()
		w.mu.Lock()
		for _, p := range w.parts {
			p.release()
		}
		w.mu.Unlock()
		w.partWG.Wait()
		close(w.writerQ)
		w.writerWG.Wait()
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		w.hardCancel()
		<-done
	}
	w.hardCancel()
	w.m.ownedPartition.Set(0)
	// Leaving lets the others take the partitions now rather than after
	// the member TTL. Best effort: the TTL covers a failure.
	leaveCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if w.membersStream != nil {
		if derr := w.leave(leaveCtx); derr != nil && !w.nc.IsClosed() {
			w.log.Warn("leave membership", zap.Error(derr))
		}
	}
	w.log.Info("worker stopped", zap.Error(err))
	return err
}

func (w *Worker) loadPrecisions(ctx context.Context) error {
	cs, err := w.store.Currencies(ctx)
	if err != nil {
		return fmt.Errorf("worker: load currencies: %w", err)
	}
	m := make(map[string]int32, len(cs))
	for _, c := range cs {
		m[c.Code] = c.Precision
	}
	w.precisions.Store(&m)
	return nil
}

// precisionsFor returns the precision table, reloading it once when an
// applied outcome names a currency it lacks (added since start-up).
func (w *Worker) precisionsFor(ctx context.Context, outcomes []transfer.Outcome) map[string]int32 {
	m := *w.precisions.Load()
	for _, o := range outcomes {
		if _, ok := m[o.Transfer.Currency]; !ok && o.Transfer.Status == transfer.StatusApplied {
			if err := w.loadPrecisions(ctx); err != nil {
				w.log.Warn("reload currencies", zap.Error(err))
			}
			return *w.precisions.Load()
		}
	}
	return m
}

// ensureMembersBucket creates the heartbeat bucket, or binds to it when
// another worker made it first.
func (w *Worker) ensureMembersBucket(ctx context.Context) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      w.cfg.MembersBucket,
		Description: "Wallet worker heartbeats",
		TTL:         w.cfg.MemberTTL,
		History:     1,
		// File storage, so the bucket survives a server restart; stale
		// heartbeats still expire by age.
		Storage:  jetstream.FileStorage,
		Replicas: w.cfg.Streams.Replicas,
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		kv, err := w.js.CreateOrUpdateKeyValue(ctx, cfg)
		if err == nil {
			return kv, nil
		}
		lastErr = err
		if kv, gerr := w.js.KeyValue(ctx, w.cfg.MembersBucket); gerr == nil {
			return kv, nil
		}
	}
	return nil, fmt.Errorf("worker: members bucket: %w", lastErr)
}

func (w *Worker) heartbeat(ctx context.Context) error {
	_, err := w.members.Put(ctx, w.cfg.ID, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return fmt.Errorf("worker: heartbeat: %w", err)
	}
	return nil
}

// recreateMembers makes the membership bucket again after it vanished (an
// operator deleted it, or a server lost it).
func (w *Worker) recreateMembers(ctx context.Context) {
	kv, err := w.ensureMembersBucket(ctx)
	if err != nil {
		w.log.Warn("recreate members bucket", zap.Error(err))
		return
	}
	s, err := w.js.Stream(ctx, "KV_"+w.cfg.MembersBucket)
	if err != nil {
		w.log.Warn("recreate members bucket", zap.Error(err))
		return
	}
	w.mu.Lock()
	w.members, w.membersStream = kv, s
	w.mu.Unlock()
}

// liveMembers lists the ids with a heartbeat younger than the bucket TTL.
// One stream-info request with a subject filter lists them, cheaper than a
// KV key watcher on every heartbeat; leaving purges the key's subject
// rather than writing a delete marker, so every subject is a live member.
func (w *Worker) liveMembers(ctx context.Context) ([]string, error) {
	info, err := w.membersStream.Info(ctx, jetstream.WithSubjectFilter(w.memberSubject(">")))
	if err != nil {
		return nil, err
	}
	prefix := w.memberSubject("")
	ids := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		if id, ok := strings.CutPrefix(subj, prefix); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// memberSubject is the KV subject of member id.
func (w *Worker) memberSubject(id string) string {
	return "$KV." + w.cfg.MembersBucket + "." + id
}

// leave removes this worker's heartbeat at once.
func (w *Worker) leave(ctx context.Context) error {
	return w.membersStream.Purge(ctx, jetstream.WithPurgeSubject(w.memberSubject(w.cfg.ID)))
}

func (w *Worker) membershipLoop() {
	defer w.loopWG.Done()
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-w.loopStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(w.hardCtx, w.cfg.opTimeout())
		if err := w.heartbeat(ctx); err != nil {
			w.log.Warn("heartbeat failed", zap.Error(err))
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
				errors.Is(err, jetstream.ErrNoStreamResponse) {
				w.recreateMembers(ctx)
			}
		}
		w.rebalance(ctx)
		cancel()
	}
}

// owner returns the member that owns partition p in view; readers of the
// membership (the console) use the same rule.
func owner(view []string, p int) string { return natsbus.PartitionOwner(view, p) }

// rebalance reads the live members and starts or releases partitions so
// that this worker pulls exactly those the sorted member list assigns it
// (p mod n). Workers whose views briefly differ may both pull a partition;
// the pin lets only one receive, and the store keeps it correct anyway.
func (w *Worker) rebalance(ctx context.Context) {
	view, err := w.liveMembers(ctx)
	if err != nil {
		w.log.Warn("list members", zap.Error(err))
		return
	}
	// Our own heartbeat may have just expired (a long pause): count us in
	// until Stop, we are still pulling.
	if i := sort.SearchStrings(view, w.cfg.ID); i == len(view) || view[i] != w.cfg.ID {
		view = append(view, w.cfg.ID)
		sort.Strings(view)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	prev := w.view
	if !equalStrings(prev, view) {
		w.log.Info("members changed", zap.Strings("members", view))
	}
	w.view = view
	owned := 0
	for p := 0; p < w.cfg.Streams.Partitions; p++ {
		mine := owner(view, p) == w.cfg.ID
		cur := w.parts[p]
		switch {
		case mine && cur == nil:
			// Take the pin at once when the previous owner is gone; a live
			// one hands it over itself after its last batch.
			prevOwner := owner(prev, p)
			takeover := prevOwner != "" && prevOwner != w.cfg.ID && !contains(view, prevOwner)
			w.startPartition(p, takeover)
			owned++
		case mine && cur != nil:
			if cur.releasing() {
				// Still finishing: start it again on a later heartbeat.
				continue
			}
			owned++
		case !mine && cur != nil && !cur.releasing():
			cur.release()
		}
	}
	w.m.ownedPartition.Set(float64(owned))
}

func (w *Worker) startPartition(p int, takeover bool) {
	part := newPartition(w, p)
	w.parts[p] = part
	w.partWG.Add(1)
	go func() {
		defer w.partWG.Done()
		part.run(takeover)
		w.m.consumerLag.DeleteLabelValues(partitionLabel(p))
		w.m.redelivered.DeleteLabelValues(partitionLabel(p))
		w.mu.Lock()
		if w.parts[p] == part {
			delete(w.parts, p)
		}
		w.mu.Unlock()
	}()
}

// Owned lists the partitions this worker is pulling (for tests and status).
func (w *Worker) Owned() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for p, part := range w.parts {
		if !part.releasing() {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// purgeLoop trims the acked prefix of every owned partition from the
// requests stream and samples consumer lag. Limits retention keeps acked
// messages; without this the stream would fill and refuse new requests.
func (w *Worker) purgeLoop() {
	defer w.loopWG.Done()
	t := time.NewTicker(w.cfg.PurgeInterval)
	defer t.Stop()
	purged := make(map[int]uint64)
	for {
		select {
		case <-w.loopStop:
			return
		case <-t.C:
		}
		for _, p := range w.Owned() {
			ctx, cancel := context.WithTimeout(w.hardCtx, 5*time.Second)
			floor, err := w.samplePartition(ctx, p)
			if err == nil && floor > purged[p] {
				if err = w.purgeBelow(ctx, p, floor+1); err == nil {
					purged[p] = floor
				}
			}
			cancel()
			if err != nil && w.hardCtx.Err() == nil {
				w.log.Warn("purge partition", zap.Int("partition", p), zap.Error(err))
			}
		}
	}
}

// reconnectLoop restores the owned partitions' consumers each time the
// connection comes back. A restarted server has lost them (they keep their
// state in memory), and a pull iterator on a missing consumer only sees
// missed heartbeats: without this, pulling would resume only when the purge
// loop next looked at the consumer.
func (w *Worker) reconnectLoop() {
	defer w.loopWG.Done()
	status := w.nc.StatusChanged(nats.CONNECTED)
	defer w.nc.RemoveStatusListener(status)
	for {
		select {
		case <-w.loopStop:
			return
		case _, open := <-status:
			if !open {
				return
			}
		}
		for _, p := range w.Owned() {
			w.restoreConsumer(p)
		}
	}
}

// restoreConsumer recreates partition p's consumer if it is missing (which
// restarts the partition's pull on it). A server that has just come
// back may still be loading its streams, so failures are retried for a
// while; the purge loop remains the fallback.
func (w *Worker) restoreConsumer(p int) {
	backoff := newBackoff(50*time.Millisecond, time.Second)
	for attempt := 0; attempt < 20; attempt++ {
		ctx, cancel := context.WithTimeout(w.hardCtx, 5*time.Second)
		_, err := w.partitionConsumer(ctx, p)
		cancel()
		if err == nil {
			return
		}
		if w.hardCtx.Err() != nil {
			return
		}
		select {
		case <-w.loopStop:
			return
		default:
		}
		if !backoff.wait(w.hardCtx) {
			return
		}
	}
	w.log.Warn("partition consumer not restored after reconnecting; the purge loop will retry", zap.Int("partition", p))
}

// partitionConsumer looks up partition p's consumer and recreates it when
// it is missing. Consumers keep their state in memory (see
// natsbus.PartitionConsumerConfig), so a restarted server has none; a new
// one starts from the partition's first unpurged message, and whatever was
// applied already replays. A recreated consumer gets a new pull at once:
// one made on the missing consumer would only see missed heartbeats.
func (w *Worker) partitionConsumer(ctx context.Context, p int) (jetstream.Consumer, error) {
	c, err := w.requests.Consumer(ctx, natsbus.ConsumerName(p))
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return c, err
	}
	w.log.Info("partition consumer missing, recreating it", zap.Int("partition", p))
	c, err = w.requests.CreateOrUpdateConsumer(ctx, natsbus.PartitionConsumerConfig(w.consumerConfig(), p))
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	pt := w.parts[p]
	w.mu.Unlock()
	if pt != nil {
		pt.restartPull() // a no-op between pulls, as when the partition loop itself asked
	}
	return c, nil
}

// consumerConfig describes the partition consumers this worker expects.
func (w *Worker) consumerConfig() natsbus.ConsumerConfig {
	return natsbus.ConsumerConfig{
		Partitions:    w.cfg.Streams.Partitions,
		MaxAckPending: w.cfg.BatchSize,
		AckWait:       w.cfg.AckWait,
		PinnedTTL:     w.cfg.PinnedTTL,
	}
}

// samplePartition records partition p's lag and returns its ack floor:
// the highest stream sequence below which everything is acked.
func (w *Worker) samplePartition(ctx context.Context, p int) (uint64, error) {
	c, err := w.partitionConsumer(ctx, p)
	if err != nil {
		return 0, err
	}
	info := c.CachedInfo()
	label := partitionLabel(p)
	w.m.consumerLag.WithLabelValues(label).Set(float64(info.NumPending) + float64(info.NumAckPending))
	w.m.redelivered.WithLabelValues(label).Set(float64(info.NumRedelivered))
	return info.AckFloor.Stream, nil
}

// purgeBelow removes partition p's messages with a stream sequence below
// seq; all of them are acked, so applied or dead-lettered.
func (w *Worker) purgeBelow(ctx context.Context, p int, seq uint64) error {
	return w.requests.Purge(ctx, jetstream.WithPurgeSubject(natsbus.PartitionFilter(p)), jetstream.WithPurgeSequence(seq))
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
