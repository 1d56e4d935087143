package natsbus

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/wallet/wallet/internal/transfer"
)

// Producer is the gateway's face of the streams, in transfer types only:
// it publishes requests (through a Batcher, so concurrent publishes share
// disk syncs), looks up a pending request, watches for an outcome and
// reads the pipeline's state for the console. Build it with NewProducer
// and Run it; it is safe for concurrent use.
type Producer struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	bus      *Bus
	batcher  *Batcher
	requests jetstream.Stream
	window   time.Duration // the requests stream's dedupe window
	outcomes *outcomeWatch

	// backlog: the requests stream may hold requests older than half the
	// dedupe window. Run keeps it current.
	backlog atomic.Bool
}

// NewProducer binds to the streams on nc, which must exist
// (EnsureStreams). Requests are published through a Batcher configured by
// batching; its Stream is always RequestsStream. opts are Open's options.
func NewProducer(ctx context.Context, nc *nats.Conn, batching BatcherConfig, opts ...Option) (*Producer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	requests, err := js.Stream(ctx, RequestsStream)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	batching.Stream = RequestsStream
	batcher, err := NewBatcher(nc, batching)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	bus, err := Open(ctx, js, append([]Option{WithBatcher(batcher)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p := &Producer{nc: nc, js: js, bus: bus, batcher: batcher, requests: requests,
		window: requests.CachedInfo().Config.Duplicates, outcomes: newOutcomeWatch(nc)}
	p.readBacklog(ctx)
	return p, nil
}

// Run publishes until ctx is cancelled, then commits what is queued and
// returns nil; later publishes fail with ErrBatcherClosed. It also keeps
// the backlog reading Publish relies on current. It returns an error when
// the connection closes while ctx is live.
func (p *Producer) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.batcher.Run(gctx) })
	g.Go(func() error { p.watchBacklog(gctx); return nil })
	return g.Wait()
}

// Publish stores r in the requests stream and returns once JetStream has
// acknowledged it; traceID travels in a header for the logs. duplicate
// reports that the stream already held a request under r's message id.
//
// JetStream drops a second request under an id only within its dedupe
// window; when the stream may hold requests older than that (a backlog,
// during an outage of the workers or the database), the id is looked up
// first, and a pending request found under it is reported as the duplicate
// it is, so that the caller answers for it instead of storing a second
// request.
func (p *Producer) Publish(ctx context.Context, r transfer.Request, traceID string) (duplicate bool, err error) {
	if p.backlog.Load() {
		if _, found, err := p.bus.LookupPending(ctx, r.ID); err != nil {
			return false, err
		} else if found {
			return true, nil
		}
	}
	ack, err := p.bus.PublishRequest(ctx, r, traceID)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// Resubmit stores r under ResubmitMsgID(r.ID): for a request whose id is
// taken in the dedupe window by a message that is not a valid request.
func (p *Producer) Resubmit(ctx context.Context, r transfer.Request, traceID string) (duplicate bool, err error) {
	ack, err := p.bus.ResubmitRequest(ctx, r, traceID)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// LookupPending is Bus.LookupPending: the request the workers will apply
// under id, with the stream's timestamp as its AcceptedAt.
func (p *Producer) LookupPending(ctx context.Context, id uuid.UUID) (transfer.Request, bool, error) {
	return p.bus.LookupPending(ctx, id)
}

// WatchOutcome starts listening for outcomes published for id (results
// and conflict notices alike): decided receives when one appears, and
// outcomes that appear while a signal waits share it. All watchers share
// one subscription, made on the connection publishes go through, so the
// server has it before it has the request. Call stop when done; it is safe
// to call more than once.
func (p *Producer) WatchOutcome(_ context.Context, id uuid.UUID) (decided <-chan struct{}, stop func(), err error) {
	return p.outcomes.watch(id)
}

// Ping is a JetStream round trip, so a server without JetStream counts as
// down.
func (p *Producer) Ping(ctx context.Context) error {
	_, err := p.js.AccountInfo(ctx)
	return err
}

// Pipeline is a snapshot of the streams, partitions and members.
func (p *Producer) Pipeline(ctx context.Context) (Pipeline, error) {
	return ReadPipeline(ctx, p.js)
}

// DeadLetters lists dead letters as ListDeadLetters does.
func (p *Producer) DeadLetters(ctx context.Context, before uint64, limit int) ([]DeadLetter, uint64, error) {
	return ListDeadLetters(ctx, p.js, before, limit)
}

// DeadLetter reads one dead letter as GetDeadLetter does.
func (p *Producer) DeadLetter(ctx context.Context, seq uint64) (DeadLetter, error) {
	return GetDeadLetter(ctx, p.js, seq)
}

// backlogEvery is how often the backlog is read: at most every quarter
// window and every second, so the reading is never too stale to matter.
func (p *Producer) backlogEvery() time.Duration {
	return max(10*time.Millisecond, min(time.Second, p.window/4))
}

// watchBacklog re-reads the backlog until ctx ends.
func (p *Producer) watchBacklog(ctx context.Context) {
	t := time.NewTicker(p.backlogEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.readBacklog(ctx)
		}
	}
}

// readBacklog notes whether the requests stream may hold a request the
// dedupe window no longer covers: its oldest message is older than half
// the window. Workers purge applied requests every few seconds, so with
// the default two-minute window this holds only during a backlog, and the
// extra lookup in Publish is paid only then. When the stream cannot be
// read it says yes.
func (p *Producer) readBacklog(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := p.requests.Info(ctx)
	if err != nil {
		p.backlog.Store(true)
		return
	}
	p.backlog.Store(info.State.Msgs > 0 && time.Since(info.State.FirstTime) > p.window/2)
}
