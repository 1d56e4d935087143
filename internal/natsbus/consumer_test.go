package natsbus_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
)

// TestEnsureConsumersReplacesOtherAckPolicy: a partition consumer made by
// an earlier version acks message by message; the server refuses to
// change an ack policy, so EnsureConsumers replaces it with a cumulative
// one instead of failing the worker's start-up.
func TestEnsureConsumersReplacesOtherAckPolicy(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Setup(t, natsbus.Config{Partitions: 2})
	ctx := testCtx(t)
	cc := natsbus.ConsumerConfig{Partitions: 2, MaxAckPending: 10, AckWait: time.Second, PinnedTTL: 2 * time.Second}
	s, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	old := natsbus.PartitionConsumerConfig(cc, 1)
	old.AckPolicy = jetstream.AckExplicitPolicy
	if _, err := s.CreateOrUpdateConsumer(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := natsbus.EnsureConsumers(ctx, js, cc); err != nil {
		t.Fatal(err)
	}
	for p := 0; p < cc.Partitions; p++ {
		c, err := s.Consumer(ctx, natsbus.ConsumerName(p))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.CachedInfo().Config.AckPolicy; got != jetstream.AckAllPolicy {
			t.Errorf("partition %d: ack policy %s, want %s", p, got, jetstream.AckAllPolicy)
		}
	}
}
