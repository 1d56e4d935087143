package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Atomic batch publish headers (JetStream ADR-50), which the batcher (through
// jetstreamext) sets on every message of a batch and drops from the messages
// it is given.
const (
	HeaderBatchID     = jetstreamext.BatchIDHeader
	HeaderBatchSeq    = jetstreamext.BatchSeqHeader
	HeaderBatchCommit = jetstreamext.BatchCommitHeader
)

// MaxBatchMessages is the server's limit on the messages of one atomic
// batch (nats-server's default max_batch_size).
const MaxBatchMessages = 1000

// Batcher defaults. The largest batch is the server's: a group is what
// queued while the previous one was stored, so the number of concurrent
// publishers bounds it anyway, and a lower cap splits a group into a full
// batch and a remainder that may fall below MinMessages and go as single
// publishes (128 connections and a cap of 100 sent 28 of every 128
// requests with a sync each).
const (
	DefaultBatchMessages = MaxBatchMessages
	DefaultBatchMin      = 32
	DefaultBatchLinger   = 0
	DefaultBatchTimeout  = 5 * time.Second
)

// MemoryStagedBatchMin is the smallest atomic batch worth sending to a
// server that stages batches in memory (StageBatchesInMemory), as walletd's
// does: there a batch of 8 takes less time and less CPU than 8 single
// publishes, a batch of 4 about the same (BenchmarkGroupPublish,
// "atomic-memory" against "singles"; docs/performance.md).
const MemoryStagedBatchMin = 8

// BatcherConfig tunes a Batcher. The zero value takes the defaults.
type BatcherConfig struct {
	// MaxMessages caps one atomic batch (default and at most 1000).
	MaxMessages int
	// MinMessages is the smallest group sent as an atomic batch (default
	// 32); a smaller group goes as single publishes, all in flight at once.
	// A file-backed R1 stream stages each atomic batch in a store of its
	// own (created, synced and deleted per batch), which costs 3.5-25 ms a
	// batch on the machines measured (docs/performance.md and its log),
	// while single publishes cost one sync each: below a few dozen
	// messages singles are cheaper. Staged in memory
	// (StageBatchesInMemory), a batch pays from MemoryStagedBatchMin, which
	// walletd then uses unless told otherwise.
	MinMessages int
	// Linger is how long the batcher waits for more publishes once it holds
	// one and fewer than MaxMessages are queued. By default it does not
	// wait: a group is whatever queued up while the previous one was being
	// stored (group commit), so a lone publish is sent at once and
	// concurrent ones share the next commit.
	Linger time.Duration
	// Timeout bounds the wait for a batch's (or a single message's) PubAck
	// (default 5s). A timeout is reported as an error: the outcome is
	// unknown, so it is never reported as stored.
	Timeout time.Duration
	// Stream, when set, is the stream every message must land in.
	Stream string
}

// DefaultBatcherConfig returns the batcher's defaults. NewBatcher fills a
// zero field of its BatcherConfig from it, except that a zero MinMessages
// is at most MaxMessages.
func DefaultBatcherConfig() BatcherConfig {
	return BatcherConfig{
		MaxMessages: DefaultBatchMessages,
		MinMessages: DefaultBatchMin,
		Linger:      DefaultBatchLinger,
		Timeout:     DefaultBatchTimeout,
	}
}

// Validate reports whether c, with its zero fields taking the defaults, is
// a batcher NewBatcher accepts.
func (c BatcherConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c BatcherConfig) withDefaults() (BatcherConfig, error) {
	d := DefaultBatcherConfig()
	fillZero(&c.MaxMessages, d.MaxMessages)
	fillZero(&c.MinMessages, min(d.MinMessages, c.MaxMessages))
	fillZero(&c.Linger, d.Linger)
	if c.Linger < 0 {
		c.Linger = 0
	}
	fillZero(&c.Timeout, d.Timeout)
	if c.MaxMessages < 1 || c.MaxMessages > MaxBatchMessages {
		return c, fmt.Errorf("%w: batch max messages %d: want 1..%d", ErrInvalidConfig, c.MaxMessages, MaxBatchMessages)
	}
	if c.MinMessages < 1 || c.MinMessages > c.MaxMessages {
		return c, fmt.Errorf("%w: batch min messages %d: want 1..%d", ErrInvalidConfig, c.MinMessages, c.MaxMessages)
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("%w: batch timeout %s", ErrInvalidConfig, c.Timeout)
	}
	return c, nil
}

// PubResult is how JetStream answered one published message.
type PubResult struct {
	// Seq is the message's sequence in the stream (for a duplicate, the
	// sequence of the message already stored under its id).
	Seq uint64
	// Duplicate is set when the stream already held the message's
	// Nats-Msg-Id within its dedupe window and dropped this copy.
	Duplicate bool
}

// Batcher groups concurrent publishes by group commit: one group is in
// flight at a time, a publish that finds nothing in flight goes at once,
// and whatever queues up meanwhile goes together as the next group. A
// group of MinMessages or more is one JetStream atomic batch: with the
// server syncing to disk before every PubAck, it is stored with one sync
// where single publishes pay one each, so throughput stops being the
// disk's sync rate. The server commits batches one after another anyway,
// and one open batch stays far from its per-stream limit (50).
//
// Batches go through jetstreamext's atomic batch publish and single
// publishes through jetstream's, so the batcher reads no acknowledgement
// itself. A caller is told its message is stored only when the batch's
// commit PubAck (or its own PubAck) says so. A batch the server refuses stores
// nothing (it is atomic); its messages are then published again in halves
// down to single publishes, where the stream's deduplication answers each
// duplicate id. A batch whose answer never comes is reported as an error to
// each of its callers: its outcome is unknown, and a caller that retries
// with the same Nats-Msg-Id gets a duplicate rather than a second copy.
//
// Run commits batches until its context is cancelled (the soft stop: it
// stops taking publishes, commits those already queued and returns) or the
// connection closes.
type Batcher struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg BatcherConfig

	started atomic.Bool
	mu      sync.RWMutex // held for reading while enqueuing, for writing to close queue
	closed  bool
	waiting atomic.Int64 // publishes queued and not answered yet
	queue   chan *queued
	done    chan struct{} // closed when Run returns
}

// queued is one caller's message waiting for its batch.
type queued struct {
	ctx context.Context
	msg *nats.Msg
	res chan outcome // buffered: the batcher never blocks on a caller
}

type outcome struct {
	r   PubResult
	err error
}

// NewBatcher builds a batcher publishing on nc; Run starts it. Publishes
// made before Run wait in its queue.
func NewBatcher(nc *nats.Conn, cfg BatcherConfig) (*Batcher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var js jetstream.JetStream
	if nc != nil {
		if js, err = jetstream.New(nc); err != nil {
			return nil, fmt.Errorf("batcher: %w", err)
		}
	}
	b := &Batcher{
		nc:    nc,
		js:    js,
		cfg:   cfg,
		queue: make(chan *queued, 4*cfg.MaxMessages),
		done:  make(chan struct{}),
	}
	return b, nil
}

// Run commits the queued publishes until ctx is cancelled, then stops
// taking new ones (they fail with ErrBatcherClosed), commits those already
// queued, waits for their answers and returns nil. When the connection
// closes it fails what is queued and returns nats.ErrConnectionClosed. Run
// may be called once.
func (b *Batcher) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("batcher: already run")
	}
	defer close(b.done)
	stop := context.AfterFunc(ctx, b.stopTaking)
	defer stop()
	status := b.nc.StatusChanged(nats.CLOSED)
	defer b.nc.RemoveStatusListener(status)
	if b.run(status) {
		return nil
	}
	// Failing the queue makes room for enqueuers waiting with the read
	// lock, so stopTaking, which needs the write lock, runs beside it.
	go b.stopTaking()
	b.failQueued(nats.ErrConnectionClosed)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("batcher: %w", nats.ErrConnectionClosed)
}

// Publish queues msg for the next batch and waits until the batch is
// stored, refused or ctx ends. msg is not modified. An error means the
// message may not be stored; a nil error means it is (or, with Duplicate,
// that its id was already stored).
func (b *Batcher) Publish(ctx context.Context, msg *nats.Msg) (PubResult, error) {
	if msg == nil || msg.Subject == "" {
		return PubResult{}, errors.New("batcher: message without subject")
	}
	p := &queued{ctx: ctx, msg: copyMsg(msg), res: make(chan outcome, 1)}
	if err := b.enqueue(ctx, p); err != nil {
		return PubResult{}, err
	}
	select {
	case o := <-p.res:
		return o.r, o.err
	case <-ctx.Done():
		// The batch holding msg may be on its way: the batcher drops a
		// caller that gave up only before its batch is sent.
		return PubResult{}, fmt.Errorf("batcher: waiting for the commit: %w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-b.done:
		// The batcher answers everything it took before it exits; an answer
		// may already be waiting.
		select {
		case o := <-p.res:
			return o.r, o.err
		default:
			return PubResult{}, ErrBatcherClosed
		}
	}
}

func (b *Batcher) enqueue(ctx context.Context, p *queued) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrBatcherClosed
	}
	select {
	case <-b.done:
		return ErrBatcherClosed
	default:
	}
	b.waiting.Add(1)
	select {
	case b.queue <- p:
		return nil
	case <-b.done:
		b.waiting.Add(-1)
		return ErrBatcherClosed
	case <-ctx.Done():
		b.waiting.Add(-1)
		return fmt.Errorf("batcher: queueing: %w", ctx.Err())
	}
}

// Waiting is the number of publishes queued or in a batch and not answered
// yet.
func (b *Batcher) Waiting() int { return int(b.waiting.Load()) }

// answer hands p its outcome.
func (b *Batcher) answer(p *queued, o outcome) {
	p.res <- o
	b.waiting.Add(-1)
}

// stopTaking closes the queue: later publishes fail with ErrBatcherClosed,
// and the loop ends once it has committed what the queue holds. It runs
// apart from the loop, which keeps emptying the queue for enqueuers that
// hold the read lock while they wait for room.
func (b *Batcher) stopTaking() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
}

// run takes one publish, gathers more and commits, until the queue is
// closed and empty (true) or the connection closes (false).
func (b *Batcher) run(status <-chan nats.Status) bool {
	group := make([]*queued, 0, b.cfg.MaxMessages)
	for {
		if b.nc.IsClosed() {
			return false
		}
		group = group[:0]
		select {
		case p, ok := <-b.queue:
			if !ok {
				return true
			}
			group = append(group, p)
		case <-status:
			// Only CLOSED is subscribed: nothing can be published any more.
			return false
		}
		group, open := b.gather(group)
		b.commit(group)
		if !open {
			return true
		}
	}
}

// gather adds queued publishes to group up to MaxMessages: those that
// queued while the previous group was in flight, and with a Linger those
// that arrive within it. It reports false
// when the queue was closed.
func (b *Batcher) gather(group []*queued) ([]*queued, bool) {
	var linger <-chan time.Time // nil: take only what is queued now
	if b.cfg.Linger > 0 {
		t := time.NewTimer(b.cfg.Linger)
		defer t.Stop()
		linger = t.C
	}
	for len(group) < b.cfg.MaxMessages {
		var p *queued
		var open bool
		if linger == nil {
			select {
			case p, open = <-b.queue:
			default:
				return group, true
			}
		} else {
			select {
			case p, open = <-b.queue:
			case <-linger:
				return group, true
			}
		}
		if !open {
			return group, false
		}
		group = append(group, p)
	}
	return group, true
}

// failQueued answers every queued publish with err. The queue is closed
// first (stopTaking), so it ends.
func (b *Batcher) failQueued(err error) {
	for p := range b.queue {
		b.answer(p, outcome{err: err})
	}
}

// commit publishes group, answering each of its callers. Callers that gave
// up while queued are dropped: they were told their message may not be
// stored, and publishing it anyway would only make that less likely true.
func (b *Batcher) commit(group []*queued) {
	live := group[:0:0]
	for _, p := range group {
		if err := p.ctx.Err(); err != nil {
			b.answer(p, outcome{err: fmt.Errorf("batcher: %w", err)})
			continue
		}
		live = append(live, p)
	}
	b.commitGroup(live)
}

func (b *Batcher) commitGroup(group []*queued) {
	if len(group) == 0 {
		return
	}
	if len(group) < b.cfg.MinMessages {
		b.publishEach(group)
		return
	}
	first, err := b.publishBatch(group)
	if err == nil {
		for k, p := range group {
			b.answer(p, outcome{r: PubResult{Seq: first + uint64(k)}})
		}
		return
	}
	var refusal *jetstream.APIError
	refused := errors.As(err, &refusal)
	if !refused && !errors.Is(err, nats.ErrNoResponders) {
		// No answer, or not one we can read: the batch may be stored.
		for _, p := range group {
			b.answer(p, outcome{err: err})
		}
		return
	}
	// The server refused the batch, or nothing listens on the commit's
	// subject: either way it stored none of it.
	if refused && refusal.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID && len(group) > 4 {
		// Usually one id is already stored: halves keep most of the group
		// in batches while narrowing down to it.
		half := len(group) / 2
		b.commitGroup(group[:half])
		b.commitGroup(group[half:])
		return
	}
	b.publishEach(group)
}

// publishEach publishes each message of group on its own, concurrently, so
// their round trips overlap, and waits for all of them.
func (b *Batcher) publishEach(group []*queued) {
	var wg sync.WaitGroup
	for _, p := range group {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.publishOne(p.msg)
			b.answer(p, outcome{r: r, err: err})
		}()
	}
	wg.Wait()
}

// publishOne publishes m and waits for its PubAck. A subject nothing
// serves is not retried: the answer would only come later.
func (b *Batcher) publishOne(m *nats.Msg) (PubResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, b.prepare(m), jetstream.WithRetryAttempts(0))
	if err != nil {
		return PubResult{}, fmt.Errorf("publish %s: %w", m.Subject, unsent(err))
	}
	return PubResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// publishBatch publishes group as one atomic batch and returns the stream
// sequence of its first message: a committed batch is stored contiguously,
// and the commit's PubAck carries the last sequence and the count (which
// jetstreamext checks against the batch it sent). Only the commit is
// acknowledged: waiting for the first message's acknowledgement too would
// add a round trip to every batch.
func (b *Batcher) publishBatch(group []*queued) (uint64, error) {
	msgs := make([]*nats.Msg, len(group))
	for k, p := range group {
		msgs[k] = b.prepare(p.msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer cancel()
	ack, err := jetstreamext.PublishMsgBatch(ctx, b.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		return 0, fmt.Errorf("batch commit: %w", unsent(err))
	}
	n := uint64(len(group))
	if ack.Sequence < n {
		return 0, fmt.Errorf("batch commit: %w: answer for %d messages at %d", ErrOutcomeUnknown, ack.BatchSize, ack.Sequence)
	}
	return ack.Sequence - n + 1, nil
}

// unsent returns err as it is when it proves the message was not stored:
// JetStream refused it, nothing serves its subject, or the client could not
// send it. Any other failure of a publish that may have been sent (no
// answer in time, a broken connection, an answer that cannot be read)
// wraps ErrOutcomeUnknown.
func unsent(err error) error {
	var refusal *jetstream.APIError
	switch {
	case errors.As(err, &refusal),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrInvalidMsg):
		return err
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

// prepare returns the copy of m that goes on the wire.
func (b *Batcher) prepare(m *nats.Msg) *nats.Msg {
	out := copyMsg(m)
	if b.cfg.Stream != "" {
		out.Header.Set(jetstream.ExpectedStreamHeader, b.cfg.Stream)
	}
	return out
}

// copyMsg copies subject, headers and data (the data slice is shared: it
// is only read). Batch headers a caller may have set are dropped.
func copyMsg(m *nats.Msg) *nats.Msg {
	out := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
	for k, v := range m.Header {
		out.Header[k] = append([]string(nil), v...)
	}
	out.Header.Del(HeaderBatchID)
	out.Header.Del(HeaderBatchSeq)
	out.Header.Del(HeaderBatchCommit)
	return out
}
