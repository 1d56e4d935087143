package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// NATSBus is the Bus on NATS JetStream, built on natsbus's contract.
type NATSBus struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	bus      *natsbus.Bus
	batcher  *natsbus.Batcher
	requests jetstream.Stream
	window   time.Duration // the requests stream's dedupe window

	mu        sync.Mutex
	checkedAt time.Time // when backlog was last read from the stream
	backlog   bool      // the stream may hold requests older than half the window
}

// NewNATSBus binds to the streams, which must exist (natsbus.EnsureStreams).
// Requests are published through a natsbus.Batcher on nc: concurrent
// submissions share one atomic batch and so one disk sync, and each is
// answered when its batch is stored. Close stops the batcher; so does
// closing nc. opts are passed to natsbus.Open.
func NewNATSBus(ctx context.Context, nc *nats.Conn, batching natsbus.BatcherConfig, opts ...natsbus.Option) (*NATSBus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("gateway bus: %w", err)
	}
	requests, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		return nil, fmt.Errorf("gateway bus: %w", err)
	}
	batching.Stream = natsbus.RequestsStream
	batcher, err := natsbus.NewBatcher(nc, batching)
	if err != nil {
		return nil, fmt.Errorf("gateway bus: %w", err)
	}
	bus, err := natsbus.Open(ctx, js, append([]natsbus.Option{natsbus.WithBatcher(batcher)}, opts...)...)
	if err != nil {
		batcher.Close()
		return nil, fmt.Errorf("gateway bus: %w", err)
	}
	return &NATSBus{nc: nc, js: js, bus: bus, batcher: batcher, requests: requests,
		window: requests.CachedInfo().Config.Duplicates}, nil
}

// Close commits the publishes already queued and stops taking new ones
// (they fail, and the gateway answers 503). Call it after the HTTP server
// has stopped.
func (b *NATSBus) Close() { b.batcher.Close() }

// Publish implements Bus. JetStream drops a second request under an id
// only within its dedupe window; when the stream may hold requests older
// than that (a backlog, during an outage of the workers or the database),
// the id is looked up first, and a pending request found under it is
// reported as the duplicate it is, so that the gateway answers for it (409
// with other fields) instead of storing a second request.
func (b *NATSBus) Publish(ctx context.Context, r transfer.Request, requestID string) (bool, error) {
	if b.mayHoldOlder(ctx) {
		if _, found, err := b.bus.LookupPending(ctx, r.ID); err != nil {
			return false, err
		} else if found {
			return true, nil
		}
	}
	ack, err := b.bus.PublishRequest(ctx, r, requestID)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// mayHoldOlder reports whether the requests stream may hold a request the
// dedupe window no longer covers: its oldest message is older than half the
// window. Workers purge applied requests every few seconds, so with the
// default two-minute window this holds only during a backlog, and the extra
// lookup is paid only then. The answer is re-read at most every quarter
// window (and every second), so it is never too stale to matter; when the
// stream cannot be read it says yes.
func (b *NATSBus) mayHoldOlder(ctx context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.checkedAt) < min(time.Second, b.window/4) {
		return b.backlog
	}
	info, err := b.requests.Info(ctx)
	if err != nil {
		return true
	}
	b.checkedAt = time.Now()
	b.backlog = info.State.Msgs > 0 && time.Since(info.State.FirstTime) > b.window/2
	return b.backlog
}

// Resubmit implements Bus.
func (b *NATSBus) Resubmit(ctx context.Context, r transfer.Request, requestID string) (bool, error) {
	ack, err := b.bus.ResubmitRequest(ctx, r, requestID)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// LookupPending implements Bus with natsbus's lookup: the first valid
// request stored under the id, poison skipped.
func (b *NATSBus) LookupPending(ctx context.Context, id uuid.UUID) (Pending, bool, error) {
	r, found, err := b.bus.LookupPending(ctx, id)
	if err != nil || !found {
		return Pending{}, false, err
	}
	return Pending{Request: r, AcceptedAt: r.SubmittedAt}, true, nil
}

// Watch implements Bus with core NATS subscriptions on the id's outcome and
// conflict subjects. They are made on the connection the publish goes
// through, so the server has them before it has the request.
func (b *NATSBus) Watch(_ context.Context, id uuid.UUID) (Watch, error) {
	w := &natsWatch{done: make(chan struct{}, 1)}
	fire := func(*nats.Msg) {
		select {
		case w.done <- struct{}{}:
		default: // a signal is already waiting to be taken
		}
	}
	for _, subject := range []string{natsbus.ResultSubject(id), natsbus.ConflictSubject(id)} {
		sub, err := b.nc.Subscribe(subject, fire)
		if err != nil {
			w.Stop()
			return nil, fmt.Errorf("watch %s: %w", id, err)
		}
		w.subs = append(w.subs, sub)
	}
	return w, nil
}

// Ping implements Bus: a JetStream round trip, so a server without
// JetStream counts as down.
func (b *NATSBus) Ping(ctx context.Context) error {
	_, err := b.js.AccountInfo(ctx)
	return err
}

type natsWatch struct {
	subs []*nats.Subscription
	done chan struct{}
}

func (w *natsWatch) Decided() <-chan struct{} { return w.done }

func (w *natsWatch) Stop() {
	for _, s := range w.subs {
		_ = s.Unsubscribe() // fails only on a closed connection, which drops it anyway
	}
}
