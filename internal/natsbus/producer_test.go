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

// TestProducerWatchersShareASubscription watches ids through the one
// shared subscription: an outcome wakes every watcher of its id (a
// conflict notice too) and no watcher of another id, a stopped watcher is
// no longer signalled, and a watch started after all others stopped still
// hears its outcome.
func TestProducerWatchersShareASubscription(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, _ := srv.Setup(t, natsbus.Config{Partitions: 4})
	p := srv.StartProducer(t, natsbus.BatcherConfig{})
	ctx := testCtx(t)

	a, b := sampleTransfer().ID, sampleTransfer().ID
	a1, stopA1, err := p.WatchOutcome(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	a2, stopA2, err := p.WatchOutcome(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	other, stopB, err := p.WatchOutcome(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	publish := func(subject string) {
		t.Helper()
		if err := nc.Publish(subject, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	wake := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(20 * time.Second):
			t.Fatalf("no signal for %s", what)
		}
	}
	publish(natsbus.ConflictSubject(a))
	wake(a1, "the first watcher of a conflict notice")
	wake(a2, "the second watcher of a conflict notice")
	stopA1()
	stopA1()
	// b's outcome, published after a's, arrives after it on the one
	// subscription: once it is seen, a's watchers have had theirs.
	publish(natsbus.ResultSubject(a))
	publish(natsbus.ResultSubject(b))
	wake(other, "b's watcher")
	wake(a2, "the remaining watcher of a")
	select {
	case <-a1:
		t.Fatal("a stopped watcher was signalled")
	default:
	}
	stopA2()
	stopB()

	c := sampleTransfer().ID
	late, stopC, err := p.WatchOutcome(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer stopC()
	publish(natsbus.ResultSubject(c))
	wake(late, "a watcher started after all others stopped")
}
