package natsbus

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
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Handler takes a batch of one partition's decoded requests, in stream
// order, and settles it: its outcomes published (Consumer.PublishOutcomes)
// and the batch acked (Batch.Ack), or single requests refused
// (Consumer.Refuse). ctx ends at the hard stop. A partition hands on its
// next batch only when Handler has returned; an error (other than the hard
// stop) restarts the partition's pull, and what was not acked is
// delivered again.
type Handler func(ctx context.Context, b *Batch) error

// Consumer is the worker's side of the bus: it keeps the worker in the
// membership, pulls the partitions the membership assigns it from their
// pinned consumers, decodes requests (dead-lettering poison), keeps the
// messages in hand from being redelivered, publishes outcomes and acks.
// Create it with NewConsumer and run it with Run.
type Consumer struct {
	cfg ConsumerSettings
	nc  *nats.Conn
	js  jetstream.JetStream
	log *zap.Logger
	m   *consumerMetrics

	requests      jetstream.Stream
	results       jetstream.Stream
	members       jetstream.KeyValue
	membersStream jetstream.Stream

	handle Handler
	// hard ends at the hard stop: everything in hand is abandoned unacked.
	hard    context.Context
	started chan struct{}

	mu      sync.Mutex
	running bool
	stopped bool
	parts   map[int]*partition
	view    []string // the member list partitions were last assigned from
	partWG  sync.WaitGroup
}

// NewConsumer checks cfg and builds a consumer on an open NATS connection.
// It does no I/O; Run does. reg receives the metrics (nil: not exported).
func NewConsumer(nc *nats.Conn, cfg ConsumerSettings, log *zap.Logger, reg prometheus.Registerer) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, fmt.Errorf("%w: a NATS connection is required", ErrInvalidConfig)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newConsumerMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}
	js, err := jetstream.New(nc,
		// A PubAck that never comes must not hold a batch forever.
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncMaxPending(4*max(cfg.BatchSize, 1000)),
	)
	if err != nil {
		return nil, fmt.Errorf("consumer jetstream: %w", err)
	}
	return &Consumer{
		cfg:     cfg,
		nc:      nc,
		js:      js,
		log:     log.With(zap.String("worker", cfg.ID)),
		m:       m,
		started: make(chan struct{}),
		parts:   make(map[int]*partition),
	}, nil
}

// ID is the consumer's membership id.
func (c *Consumer) ID() string { return c.cfg.ID }

// BatchSize is the most requests one batch holds.
func (c *Consumer) BatchSize() int { return c.cfg.BatchSize }

// Started is closed once Run has joined the membership and pulls.
func (c *Consumer) Started() <-chan struct{} { return c.started }

// Run ensures the streams, consumers and membership bucket exist (safe when
// several processes start at once), joins the membership and hands the
// batches of the partitions assigned to it to handle until ctx ends. Then
// it stops pulling, finishes the batches in hand, hands its partitions over
// and leaves the membership. If StopTimeout passes first, or the connection
// closes, what is in hand is abandoned unacked (it is redelivered and
// applied once) and Run returns ErrAbandoned.
func (c *Consumer) Run(ctx context.Context, handle Handler) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrConsumerRunning
	}
	c.running = true
	c.mu.Unlock()
	if err := c.open(ctx); err != nil {
		return err
	}
	c.handle = handle

	hard, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	c.hard = hard
	closed := c.nc.StatusChanged(nats.CLOSED)
	defer c.nc.RemoveStatusListener(closed)
	if c.nc.IsClosed() {
		hardStop()
	}
	var aborted atomic.Bool
	var watch errgroup.Group
	watch.Go(func() error {
		// The hard stop: the connection is gone (nothing in hand can be
		// settled), or the soft stop took longer than StopTimeout.
		select {
		case <-closed:
		case <-ctx.Done():
			t := time.NewTimer(c.cfg.StopTimeout)
			defer t.Stop()
			select {
			case <-closed:
			case <-t.C:
			case <-hard.Done():
				return nil
			}
		case <-hard.Done():
			return nil
		}
		aborted.Store(true)
		hardStop()
		return nil
	})

	// Assign right away rather than a heartbeat later.
	c.rebalance(hard)
	var loops errgroup.Group
	loops.Go(func() error { c.membershipLoop(ctx); return nil })
	loops.Go(func() error { c.purgeLoop(ctx); return nil })
	loops.Go(func() error { c.reconnectLoop(ctx); return nil })
	keepDone := make(chan struct{})
	var keep errgroup.Group
	keep.Go(func() error { c.progressLoop(keepDone); return nil })
	close(c.started)
	c.log.Info("worker started",
		zap.Int("partitions", c.cfg.Streams.Partitions), zap.Int("batch_size", c.cfg.BatchSize),
		zap.Duration("ack_wait", c.cfg.AckWait), zap.Duration("pinned_ttl", c.cfg.PinnedTTL))

	<-ctx.Done()
	_ = loops.Wait()
	c.mu.Lock()
	c.stopped = true
	for _, p := range c.parts {
		p.release()
	}
	c.mu.Unlock()
	c.partWG.Wait()
	close(keepDone)
	_ = keep.Wait()
	hardStop()
	_ = watch.Wait()
	c.m.ownedPartition.Set(0)
	// Leaving lets the others take the partitions now rather than after
	// the member TTL. Best effort: the TTL covers a failure.
	leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if derr := c.leave(leaveCtx); derr != nil && !c.nc.IsClosed() {
		c.log.Warn("leave membership", zap.Error(derr))
	}
	if aborted.Load() {
		c.log.Info("worker stopped", zap.Error(ErrAbandoned))
		return ErrAbandoned
	}
	c.log.Info("worker stopped")
	return nil
}

// open ensures the streams, consumers and membership bucket and joins.
func (c *Consumer) open(ctx context.Context) error {
	if err := EnsureStreams(ctx, c.js, c.cfg.Streams); err != nil {
		return err
	}
	if err := EnsureConsumers(ctx, c.js, c.cfg.consumerConfig()); err != nil {
		return err
	}
	var err error
	if c.requests, err = c.js.Stream(ctx, RequestsStream); err != nil {
		return fmt.Errorf("worker: requests stream: %w", err)
	}
	if c.results, err = c.js.Stream(ctx, ResultsStream); err != nil {
		return fmt.Errorf("worker: results stream: %w", err)
	}
	if c.members, err = c.ensureMembersBucket(ctx); err != nil {
		return err
	}
	if c.membersStream, err = c.js.Stream(ctx, "KV_"+c.cfg.MembersBucket); err != nil {
		return fmt.Errorf("worker: members stream: %w", err)
	}
	return c.heartbeat(ctx)
}

// ensureMembersBucket creates the heartbeat bucket, or binds to it when
// another worker made it first.
func (c *Consumer) ensureMembersBucket(ctx context.Context) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      c.cfg.MembersBucket,
		Description: "Wallet worker heartbeats",
		TTL:         c.cfg.MemberTTL,
		History:     1,
		// File storage, so the bucket survives a server restart; stale
		// heartbeats still expire by age.
		Storage:  jetstream.FileStorage,
		Replicas: c.cfg.Streams.Replicas,
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		kv, err := c.js.CreateOrUpdateKeyValue(ctx, cfg)
		if err == nil {
			return kv, nil
		}
		lastErr = err
		if kv, gerr := c.js.KeyValue(ctx, c.cfg.MembersBucket); gerr == nil {
			return kv, nil
		}
	}
	return nil, fmt.Errorf("worker: members bucket: %w", lastErr)
}

func (c *Consumer) heartbeat(ctx context.Context) error {
	c.mu.Lock()
	members := c.members
	c.mu.Unlock()
	_, err := members.Put(ctx, c.cfg.ID, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return fmt.Errorf("worker: heartbeat: %w", err)
	}
	return nil
}

// recreateMembers makes the membership bucket again after it vanished (an
// operator deleted it, or a server lost it).
func (c *Consumer) recreateMembers(ctx context.Context) {
	kv, err := c.ensureMembersBucket(ctx)
	if err != nil {
		c.log.Warn("recreate members bucket", zap.Error(err))
		return
	}
	s, err := c.js.Stream(ctx, "KV_"+c.cfg.MembersBucket)
	if err != nil {
		c.log.Warn("recreate members bucket", zap.Error(err))
		return
	}
	c.mu.Lock()
	c.members, c.membersStream = kv, s
	c.mu.Unlock()
}

// liveMembers lists the ids with a heartbeat younger than the bucket TTL.
// One stream-info request with a subject filter lists them, cheaper than a
// KV key watcher on every heartbeat; leaving purges the key's subject
// rather than writing a delete marker, so every subject is a live member.
func (c *Consumer) liveMembers(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	ms := c.membersStream
	c.mu.Unlock()
	info, err := ms.Info(ctx, jetstream.WithSubjectFilter(c.memberSubject(">")))
	if err != nil {
		return nil, err
	}
	prefix := c.memberSubject("")
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
func (c *Consumer) memberSubject(id string) string {
	return "$KV." + c.cfg.MembersBucket + "." + id
}

// leave removes this worker's heartbeat at once.
func (c *Consumer) leave(ctx context.Context) error {
	c.mu.Lock()
	ms := c.membersStream
	c.mu.Unlock()
	return ms.Purge(ctx, jetstream.WithPurgeSubject(c.memberSubject(c.cfg.ID)))
}

func (c *Consumer) membershipLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		opCtx, cancel := context.WithTimeout(c.hard, c.cfg.opTimeout())
		if err := c.heartbeat(opCtx); err != nil {
			c.log.Warn("heartbeat failed", zap.Error(err))
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
				errors.Is(err, jetstream.ErrNoStreamResponse) {
				c.recreateMembers(opCtx)
			}
		}
		c.rebalance(opCtx)
		cancel()
	}
}

// rebalance reads the live members and starts or releases partitions so
// that this worker pulls exactly those the sorted member list assigns it
// (PartitionOwner). Workers whose views briefly differ may both pull a
// partition; the pin lets only one receive, and the store keeps it correct
// anyway.
func (c *Consumer) rebalance(ctx context.Context) {
	view, err := c.liveMembers(ctx)
	if err != nil {
		c.log.Warn("list members", zap.Error(err))
		return
	}
	// Our own heartbeat may have just expired (a long pause): count us in
	// until we stop, we are still pulling.
	if i := sort.SearchStrings(view, c.cfg.ID); i == len(view) || view[i] != c.cfg.ID {
		view = append(view, c.cfg.ID)
		sort.Strings(view)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	prev := c.view
	if !equalStrings(prev, view) {
		c.log.Info("members changed", zap.Strings("members", view))
	}
	c.view = view
	owned := 0
	for p := 0; p < c.cfg.Streams.Partitions; p++ {
		mine := PartitionOwner(view, p) == c.cfg.ID
		cur := c.parts[p]
		switch {
		case mine && cur == nil:
			// Take the pin at once when the previous owner is gone; a live
			// one hands it over itself after its last batch.
			prevOwner := PartitionOwner(prev, p)
			takeover := prevOwner != "" && prevOwner != c.cfg.ID && !contains(view, prevOwner)
			c.startPartition(p, takeover)
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
	c.m.ownedPartition.Set(float64(owned))
}

func (c *Consumer) startPartition(p int, takeover bool) {
	part := newPartition(c, p)
	c.parts[p] = part
	c.partWG.Add(1)
	go func() {
		defer c.partWG.Done()
		part.run(takeover)
		c.m.consumerLag.DeleteLabelValues(partitionLabel(p))
		c.m.redelivered.DeleteLabelValues(partitionLabel(p))
		c.mu.Lock()
		if c.parts[p] == part {
			delete(c.parts, p)
		}
		c.mu.Unlock()
	}()
}

// Owned lists the partitions this consumer is pulling (for tests and
// status).
func (c *Consumer) Owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for p, part := range c.parts {
		if !part.releasing() {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// progressLoop tells the server every progressEvery that the messages in
// hand are still being worked on, so their ack wait does not run out
// while they wait for a writer, the database or a previous owner. One
// loop serves every partition.
func (c *Consumer) progressLoop(done <-chan struct{}) {
	t := time.NewTicker(c.cfg.progressEvery())
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		c.mu.Lock()
		for _, p := range c.parts {
			msgs = p.inHand(msgs)
		}
		c.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
}

// purgeLoop samples the lag of the owned partitions and trims the acked
// prefix of the requests stream. Limits retention keeps acked messages;
// without this the stream would fill and refuse new requests. The owner of
// partition 0 purges, for every partition at once, below the lowest ack
// floor (see commonFloor): one purge by sequence drops whole blocks of the
// store, where a purge per partition with a subject filter walks the
// messages of each and holds the stream's ingest meanwhile.
func (c *Consumer) purgeLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		owned := c.Owned()
		for _, p := range owned {
			opCtx, cancel := context.WithTimeout(c.hard, 5*time.Second)
			err := c.samplePartition(opCtx, p)
			cancel()
			if err != nil && c.hard.Err() == nil {
				c.log.Warn("sample partition", zap.Int("partition", p), zap.Error(err))
			}
		}
		if len(owned) == 0 || owned[0] != 0 {
			continue
		}
		opCtx, cancel := context.WithTimeout(c.hard, 10*time.Second)
		// The stream's own first sequence says what is purged already, also
		// after the stream was recreated and its sequences began again.
		first, floor, err := c.commonFloor(opCtx)
		if err == nil && floor >= first {
			err = c.requests.Purge(opCtx, jetstream.WithPurgeSequence(floor+1))
		}
		cancel()
		if err != nil && c.hard.Err() == nil {
			c.log.Warn("purge requests", zap.Error(err))
		}
	}
}

// commonFloor returns a stream sequence up to which every partition has
// acked (applied or dead-lettered) all its messages, so that one purge
// below it removes only settled requests. It reads the stream's last
// sequence first, then each partition consumer: one with nothing pending
// and nothing unacked has settled everything it had at that last
// sequence; any other has settled its messages up to its ack floor. A
// message stored after the last sequence was read is above the result,
// and a partition consumer that cannot be read stops the purge. It also
// returns the stream's first sequence.
func (c *Consumer) commonFloor(ctx context.Context) (first, floor uint64, err error) {
	si, err := c.requests.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	first, floor = si.State.FirstSeq, si.State.LastSeq
	for p := 0; p < c.cfg.Streams.Partitions; p++ {
		cons, err := c.requests.Consumer(ctx, ConsumerName(p))
		if err != nil {
			return 0, 0, fmt.Errorf("consumer %s: %w", ConsumerName(p), err)
		}
		info := cons.CachedInfo()
		if info.NumPending == 0 && info.NumAckPending == 0 {
			continue
		}
		floor = min(floor, info.AckFloor.Stream)
	}
	return first, floor, nil
}

// reconnectLoop restores the owned partitions' consumers each time the
// connection comes back. A restarted server has lost them (they keep their
// state in memory), and a pull iterator on a missing consumer only sees
// missed heartbeats: without this, pulling would resume only when the purge
// loop next looked at the consumer.
func (c *Consumer) reconnectLoop(ctx context.Context) {
	status := c.nc.StatusChanged(nats.CONNECTED)
	defer c.nc.RemoveStatusListener(status)
	for {
		select {
		case <-ctx.Done():
			return
		case _, open := <-status:
			if !open {
				return
			}
		}
		for _, p := range c.Owned() {
			c.restoreConsumer(ctx, p)
		}
	}
}

// restoreConsumer recreates partition p's consumer if it is missing (which
// restarts the partition's pull on it). A server that has just come
// back may still be loading its streams, so failures are retried for a
// while; the purge loop remains the fallback.
func (c *Consumer) restoreConsumer(ctx context.Context, p int) {
	backoff := newBackoff(50*time.Millisecond, time.Second)
	for attempt := 0; attempt < 20; attempt++ {
		opCtx, cancel := context.WithTimeout(c.hard, 5*time.Second)
		_, err := c.partitionConsumer(opCtx, p)
		cancel()
		if err == nil || c.hard.Err() != nil || ctx.Err() != nil {
			return
		}
		if !backoff.wait(ctx) {
			return
		}
	}
	c.log.Warn("partition consumer not restored after reconnecting; the purge loop will retry", zap.Int("partition", p))
}

// partitionConsumer looks up partition p's consumer and recreates it when
// it is missing. Consumers keep their state in memory (see
// PartitionConsumerConfig), so a restarted server has none; a new one
// starts from the partition's first unpurged message, and whatever was
// applied already replays. A recreated consumer gets a new pull at once:
// one made on the missing consumer would only see missed heartbeats.
func (c *Consumer) partitionConsumer(ctx context.Context, p int) (jetstream.Consumer, error) {
	cons, err := c.requests.Consumer(ctx, ConsumerName(p))
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return cons, err
	}
	c.log.Info("partition consumer missing, recreating it", zap.Int("partition", p))
	cons, err = c.requests.CreateOrUpdateConsumer(ctx, PartitionConsumerConfig(c.cfg.consumerConfig(), p))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	pt := c.parts[p]
	c.mu.Unlock()
	if pt != nil {
		pt.restartPull() // a no-op between pulls, as when the partition loop itself asked
	}
	return cons, nil
}

// samplePartition records partition p's lag.
func (c *Consumer) samplePartition(ctx context.Context, p int) error {
	cons, err := c.partitionConsumer(ctx, p)
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	label := partitionLabel(p)
	c.m.consumerLag.WithLabelValues(label).Set(float64(info.NumPending) + float64(info.NumAckPending))
	c.m.redelivered.WithLabelValues(label).Set(float64(info.NumRedelivered))
	return nil
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

// backoff is a capped exponential wait.
type backoff struct {
	next, max time.Duration
}

func newBackoff(first, max time.Duration) *backoff { return &backoff{next: first, max: max} }

// wait sleeps for the next interval; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
