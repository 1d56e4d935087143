package gateway

import (
	"context"
	"fmt"
	"sync"

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
}

// NewNATSBus binds to the streams, which must exist (natsbus.EnsureStreams).
// Requests are published through a natsbus.Batcher on nc: concurrent
// submissions share one atomic batch and so one disk sync, and each is
// answered when its batch is stored. Close stops the batcher; so does
// closing nc.
func NewNATSBus(ctx context.Context, nc *nats.Conn, batching natsbus.BatcherConfig) (*NATSBus, error) {
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
	bus, err := natsbus.Open(ctx, js, natsbus.WithBatcher(batcher))
	if err != nil {
		batcher.Close()
		return nil, fmt.Errorf("gateway bus: %w", err)
	}
	return &NATSBus{nc: nc, js: js, bus: bus, batcher: batcher, requests: requests}, nil
}

// Close commits the publishes already queued and stops taking new ones
// (they fail, and the gateway answers 503). Call it after the HTTP server
// has stopped.
func (b *NATSBus) Close() { b.batcher.Close() }

// Publish implements Bus.
func (b *NATSBus) Publish(ctx context.Context, r transfer.Request, requestID string) (bool, error) {
	ack, err := b.bus.PublishRequest(ctx, r, requestID)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
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
	w := &natsWatch{done: make(chan struct{})}
	fire := func(*nats.Msg) { w.once.Do(func() { close(w.done) }) }
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
	once sync.Once
	done chan struct{}
}

func (w *natsWatch) Decided() <-chan struct{} { return w.done }

func (w *natsWatch) Stop() {
	for _, s := range w.subs {
		_ = s.Unsubscribe() // fails only on a closed connection, which drops it anyway
	}
}
