package natsbus_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
)

// TestProducer publishes through a running producer: a request is stored
// once and found pending, a second publish under its id is a duplicate, an
// outcome on its result subject wakes a watcher, and after the soft stop
// publishes are refused.
func TestProducer(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, _ := srv.Setup(t, natsbus.Config{Partitions: 4})
	p := srv.StartProducer(t, natsbus.BatcherConfig{})
	ctx := testCtx(t)

	r := sampleTransfer()
	outcomes, stop, err := p.WatchOutcome(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if dup, err := p.Publish(ctx, r, "trace-1"); err != nil || dup {
		t.Fatalf("first publish: duplicate %v, %v", dup, err)
	}
	if dup, err := p.Publish(ctx, r, "trace-2"); err != nil || !dup {
		t.Fatalf("second publish: duplicate %v, %v", dup, err)
	}
	got, found, err := p.LookupPending(ctx, r.ID)
	if err != nil || !found || got.ID != r.ID || got.AcceptedAt.IsZero() {
		t.Fatalf("lookup: %+v %v %v", got, found, err)
	}

	if err := nc.Publish(natsbus.ResultSubject(r.ID), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-outcomes:
	case <-time.After(20 * time.Second):
		t.Fatal("no signal for an outcome")
	}
	stop()
	stop() // twice is fine

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, sampleTransfer(), ""); !errors.Is(err, natsbus.ErrBatcherClosed) {
		t.Fatalf("publish after stop: %v, want ErrBatcherClosed", err)
	}
}
