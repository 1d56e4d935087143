package natstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/natsbus"
)

// Producer is a running natsbus.Producer on a connection of its own.
type Producer struct {
	*natsbus.Producer
	// Conn is the producer's own connection, for tests that must see it
	// lose the server.
	Conn   *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

// Stop is the producer's soft stop: it commits what is queued, refuses
// later publishes and waits for Run to return. Safe to call more than once.
func (p *Producer) Stop() error {
	p.cancel()
	err := <-p.done
	p.done <- err
	return err
}

// StartProducer builds a producer on a new connection to s, runs it and
// stops it when the test ends. The connection, like the binaries' (see
// lifecycle.NATSOptions), buffers nothing while reconnecting: a publish
// during an outage then fails as not stored instead of being sent later.
// The streams must exist (Setup).
func (s *Server) StartProducer(t testing.TB, batching natsbus.BatcherConfig, opts ...natsbus.Option) *Producer {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.Name(t.Name()+"-producer"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := natsbus.NewProducer(ctx, nc, batching, opts...)
	if err != nil {
		t.Fatalf("natstest: producer: %v", err)
	}
	run, stop := context.WithCancel(context.Background())
	out := &Producer{Producer: p, Conn: nc, cancel: stop, done: make(chan error, 1)}
	go func() { out.done <- p.Run(run) }()
	t.Cleanup(func() {
		if err := out.Stop(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("natstest: producer: %v", err)
		}
	})
	return out
}
