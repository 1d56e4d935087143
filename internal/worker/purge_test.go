package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// holdingStore is the real store, except that a batch with a request of
// account held waits at gate: its partition stays unacked while the others
// go on.
type holdingStore struct {
	*postgres.Store
	held    uuid.UUID
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (s *holdingStore) ApplyBatch(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	for _, r := range reqs {
		if r.PartitionAccount() != s.held {
			continue
		}
		s.once.Do(func() { close(s.entered) })
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		break
	}
	return s.Store.ApplyBatch(ctx, reqs)
}

// TestPurgeKeepsWhatAPartitionHasNotApplied: the purge removes the requests
// every partition has applied, and never one a partition still holds,
// however many later requests of other partitions are applied meanwhile.
// Purged unapplied, an accepted request would be lost.
func TestPurgeKeepsWhatAPartitionHasNotApplied(t *testing.T) {
	t.Parallel()
	e := setup(t)
	inOne := e.accountsIn(2, func(p int) bool { return p == 1 })
	warm, held := inOne[0], inOne[1]
	others := e.accountsIn(3, func(p int) bool { return p != 1 })
	store := &holdingStore{Store: e.store, held: held, entered: make(chan struct{}), gate: make(chan struct{})}
	cfg := e.cfg
	// Two writers: one waits with the held batch, the other applies the
	// other partitions' requests.
	cfg.Concurrency = 2
	e.startWorker(cfg, store)
	// Registered after the worker's own cleanup, so it runs first: a test
	// that fails while the batch is held lets it go before the worker is
	// stopped, instead of leaving the stop to wait for the hard stop.
	t.Cleanup(func() {
		select {
		case <-store.gate:
		default:
			close(store.gate)
		}
	})

	requests, err := e.js.Stream(ctx(t), natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	firstSeq := func() uint64 {
		info, err := requests.Info(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.FirstSeq
	}

	// Partition 1 applies one request first: a partition's ack floor is
	// the stream sequence of the last request it applied, so the purge may
	// go up to warm and no further while stuck waits.
	before, warmed := deposit(others[0], "1", "USD"), deposit(warm, "1", "USD")
	e.publish(before, warmed)
	e.waitResult(before.ID)
	e.waitResult(warmed.ID)
	stuck := deposit(held, "5", "USD")
	ack, err := e.bus.PublishRequest(ctx(t), stuck, "")
	if err != nil {
		t.Fatal(err)
	}
	<-store.entered
	var after []transfer.Request
	for i := range 12 {
		after = append(after, deposit(others[i%len(others)], "1", "USD"))
	}
	e.publish(after...)
	for _, r := range after {
		e.waitResult(r.ID)
	}

	// The purge reaches the held request and stops there.
	eventually(t, "the purge of what precedes the held request", func() bool { return firstSeq() >= ack.Sequence })
	time.Sleep(5 * cfg.PurgeInterval)
	if got := firstSeq(); got != ack.Sequence {
		t.Fatalf("requests stream starts at %d, want the held request's %d", got, ack.Sequence)
	}
	if _, found, err := e.bus.LookupPending(ctx(t), stuck.ID); err != nil || !found {
		t.Fatalf("the held request left the stream unapplied (found %v, err %v)", found, err)
	}

	close(store.gate)
	if r := e.waitResult(stuck.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("held request: %+v", r)
	}
	if got := e.balance(held); !got.Equal(dec("5")) {
		t.Fatalf("held account's balance %s, want 5", got)
	}
	eventually(t, "the purge past the applied request", func() bool { return firstSeq() > ack.Sequence })
}
