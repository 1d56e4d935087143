package worker_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// pausingStore is the real store with a gate: once armed, ApplyBatch
// waits until the gate opens, like a process stopped mid-batch.
type pausingStore struct {
	*postgres.Store
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (s *pausingStore) ApplyBatch(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	if s.armed.Load() {
		s.once.Do(func() { close(s.entered) })
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ApplyBatch(ctx, reqs)
}

// TestTakeoverReleaseKeepsOrder pauses a partition's owner while it holds
// a deposit, lets another worker take the partition over, and brings the
// old owner's heartbeat back, which makes the new one release the
// partition before its first batch; then the old owner resumes. A withdrawal of that deposit delivered to the new owner
// during its release must wait for the deposit the old owner still holds:
// applied first, it would be rejected for insufficient funds, for good.
func TestTakeoverReleaseKeepsOrder(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) {
		// The pause outlasts the member TTL but not the ack wait: the old
		// owner still holds its message when it comes back.
		c.AckWait = 3 * time.Second
		c.PinnedTTL = 4 * time.Second
	})
	proxy := startProxy(t, e.srv.URL())
	ps := &pausingStore{Store: e.store, entered: make(chan struct{}), gate: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-ps.gate:
		default:
			close(ps.gate)
		}
	})
	cfgA, cfgB := e.cfg, e.cfg
	cfgA.ID, cfgB.ID = "a-worker", "b-worker"
	a := e.startWorkerAt(cfgA, ps, proxy.URL())

	acct := e.accountsIn(1, func(p int) bool { return p == 0 })[0]
	deposit1 := deposit(acct, "100", "USD")
	withdraw := withdrawal(acct, "100", "USD")
	released := make(chan struct{})
	var bPin string // b's pin on partition 0 when the withdrawal reached it
	var hookOnce sync.Once
	cfgB.BeforeFinish = func(p int) {
		if p != 0 {
			return
		}
		hookOnce.Do(func() {
			defer close(released)
			// The withdrawal arrives while b still holds the pin: it
			// is delivered to b's draining pull, with the deposit
			// still in a's hands.
			// (This runs on b's partition goroutine: errors, not Fatal.)
			if _, err := e.bus.PublishRequest(context.Background(), withdraw, ""); err != nil {
				t.Errorf("publish withdrawal: %v", err)
				return
			}
			for deadline := time.Now().Add(10 * time.Second); e.ackPending(0) != 2 || e.pinOf(0) == ""; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("the withdrawal was not delivered to b")
					return
				}
			}
			bPin = e.pinOf(0)
		})
	}
	b := e.startWorkerAt(cfgB, nil, e.srv.URL())
	eventually(t, "partitions spread", func() bool {
		return slices.Equal(a.Owned(), []int{0, 2}) && slices.Equal(b.Owned(), []int{1, 3})
	})

	ps.armed.Store(true)
	e.publish(deposit1)
	select {
	case <-ps.entered:
	case <-ctx(t).Done():
		t.Fatal("worker a never took the deposit")
	}
	proxy.pause()
	eventually(t, "b takes partition 0 over", func() bool { return slices.Contains(b.Owned(), 0) })
	// a's heartbeat returns; a itself is still frozen, so only b pulls
	// while it releases the partition.
	kv, err := e.js.KeyValue(ctx(t), natsbus.MembersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx(t), cfgA.ID, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-released:
	case <-ctx(t).Done():
		t.Fatal("b never released partition 0")
	}
	// b has applied or handed back what it got once its pin is gone; only
	// then may a go on.
	eventually(t, "b hands partition 0 over", func() bool { return e.pinOf(0) != bPin })
	proxy.resume()
	close(ps.gate)

	if r := e.waitResult(deposit1.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("deposit: %+v", r)
	}
	if r := e.waitResult(withdraw.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("withdrawal applied out of order: %s %s", r.Status, r.Reason)
	}
	if got := e.balance(acct); !got.IsZero() {
		t.Fatalf("balance %s, want 0", got)
	}
}

// ackPending is the number of partition p's messages delivered and not
// yet acked, or -1 when the consumer cannot be read.
func (e *env) ackPending(p int) int {
	c, err := e.js.Consumer(context.Background(), natsbus.RequestsStream, natsbus.ConsumerName(p))
	if err != nil {
		return -1
	}
	return c.CachedInfo().NumAckPending
}

// pinOf is the client id partition p's consumer is pinned to, if any.
func (e *env) pinOf(p int) string {
	c, err := e.js.Consumer(context.Background(), natsbus.RequestsStream, natsbus.ConsumerName(p))
	if err != nil {
		return ""
	}
	for _, g := range c.CachedInfo().PriorityGroups {
		return g.PinnedClientID
	}
	return ""
}
