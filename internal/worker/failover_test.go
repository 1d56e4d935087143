package worker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
)

// hangingStore is the real store with a switch: once armed, ApplyBatch
// (optionally after committing) hangs until its context ends, like a
// process frozen mid-batch.
type hangingStore struct {
	*postgres.Store
	armed       atomic.Bool
	commitFirst bool
	once        sync.Once
	entered     chan struct{}
}

func (h *hangingStore) ApplyBatch(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	if !h.armed.Load() {
		return h.Store.ApplyBatch(ctx, reqs)
	}
	if h.commitFirst {
		if _, err := h.Store.ApplyBatch(ctx, reqs); err != nil {
			return nil, err
		}
	}
	h.once.Do(func() { close(h.entered) })
	<-ctx.Done()
	return nil, ctx.Err()
}

// accountsIn creates n USD accounts whose requests land in partitions
// owned per the given predicate.
func (e *env) accountsIn(n int, want func(p int) bool) []uuid.UUID {
	var out []uuid.UUID
	for len(out) < n {
		id := uuid.New()
		if !want(natsbus.PartitionOf(id, e.cfg.Streams.Partitions)) {
			continue
		}
		if _, _, err := e.store.CreateAccount(ctx(e.t), id, "USD"); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// orderedLoad builds, per account, deposit/withdraw-all pairs larger than
// any balance the account has otherwise (so a withdrawal applied before its
// deposit would be rejected) and small transfers between the accounts.
func orderedLoad(accounts []uuid.UUID, pairs int) []transfer.Request {
	var reqs []transfer.Request
	for k := 0; k < pairs; k++ {
		for i, a := range accounts {
			amount := fmt.Sprintf("%d", 500+k)
			reqs = append(reqs, deposit(a, amount, "USD"), withdrawal(a, amount, "USD"),
				xfer(a, accounts[(i+1)%len(accounts)], "1", "USD"))
		}
	}
	return reqs
}

func TestCrashMidBatch(t *testing.T) {
	t.Parallel()
	for _, commitFirst := range []bool{false, true} {
		name := "before_commit"
		if commitFirst {
			name = "after_commit_before_ack"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testCrashMidBatch(t, commitFirst)
		})
	}
}

func testCrashMidBatch(t *testing.T, commitFirst bool) {
	e := setup(t)
	hs := &hangingStore{Store: e.store, commitFirst: commitFirst, entered: make(chan struct{})}
	cfgA, cfgB := e.cfg, e.cfg
	cfgA.ID, cfgB.ID = "a-worker", "b-worker"
	a := e.startWorker(cfgA, hs)
	b := e.startWorker(cfgB, nil)
	// Sorted ids: a-worker owns the even partitions, b-worker the odd.
	eventually(t, "partitions spread", func() bool {
		return slices.Equal(a.Owned(), []int{0, 2}) && slices.Equal(b.Owned(), []int{1, 3})
	})
	accounts := append(e.accountsIn(4, func(p int) bool { return p%2 == 0 }), e.accountsIn(4, func(p int) bool { return p%2 == 1 })...)
	e.deposited("100", "USD", accounts...)
	total := e.totalBalance(accounts)

	hs.armed.Store(true)
	load := orderedLoad(accounts, 10)
	e.publish(load...)
	select {
	case <-hs.entered:
	case <-ctx(t).Done():
		t.Fatal("worker a never started a batch")
	}
	crashed := time.Now()
	a.crash()

	for _, r := range load {
		res := e.waitResult(r.ID)
		if res.Status != transfer.StatusApplied {
			t.Fatalf("%s of %s on %s: %s %s", r.Kind, r.Amount, r.PartitionAccount(), res.Status, res.Reason)
		}
	}
	t.Logf("all %d requests decided %s after the crash", len(load), time.Since(crashed).Round(time.Millisecond))
	if got := e.totalBalance(accounts); !got.Equal(total) {
		t.Fatalf("total %s, want %s", got, total)
	}
	for _, r := range load {
		if n := e.transferCount(r.ID); n != 1 {
			t.Fatalf("%s stored %d times", r.ID, n)
		}
		if n := e.resultCount(natsbus.ResultSubject(r.ID)); n != 1 {
			t.Fatalf("%s has %d outcome messages", r.ID, n)
		}
	}
	var entries int
	if err := e.store.Pool().QueryRow(ctx(t), `SELECT count(*) FROM entries`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	// 8 funding deposits, and per pair-round 1+1+2 entries per account.
	if want := len(accounts) + 10*len(accounts)*4; entries != want {
		t.Fatalf("%d entries, want %d", entries, want)
	}
	if commitFirst && counterValue(t, b.reg, "wallet_worker_replays_total") == 0 {
		t.Fatal("the batch committed by the crashed worker was not replayed by the survivor")
	}
	if got := counterValue(t, b.reg, "wallet_worker_redeliveries_total"); got == 0 {
		t.Fatal("no redelivered message reached the survivor")
	}
}

// TestScaleOut runs three workers, checks the partitions are spread, then
// stops one gracefully and crashes another, measuring how long each
// partition move takes until a request in a moved partition is applied.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) { c.Streams.Partitions = 6 })
	var ws []*running
	for _, id := range []string{"w1", "w2", "w3"} {
		cfg := e.cfg
		cfg.ID = id
		ws = append(ws, e.startWorker(cfg, nil))
	}
	eventually(t, "partitions spread over three workers", func() bool {
		return slices.Equal(ws[0].Owned(), []int{0, 3}) && slices.Equal(ws[1].Owned(), []int{1, 4}) &&
			slices.Equal(ws[2].Owned(), []int{2, 5})
	})
	accounts := e.accountsIn(12, func(int) bool { return true })
	e.deposited("5", "USD", accounts...)

	// Graceful: w2 leaves, w1 and w3 take its partitions.
	stopped := time.Now()
	ws[1].stop(t)
	e.deposited("1", "USD", e.accountsIn(1, func(p int) bool { return p == 1 })[0], e.accountsIn(1, func(p int) bool { return p == 4 })[0])
	handover := time.Since(stopped)
	eventually(t, "partitions spread over two workers", func() bool {
		return slices.Equal(ws[0].Owned(), []int{0, 2, 4}) && slices.Equal(ws[2].Owned(), []int{1, 3, 5})
	})

	// Crash: w3 is cut off; w1 takes everything once w3's heartbeat expires.
	crashed := time.Now()
	ws[2].crash()
	moved := []uuid.UUID{}
	for _, p := range []int{1, 3, 5} {
		q := p
		moved = append(moved, e.accountsIn(1, func(p int) bool { return p == q })[0])
	}
	e.deposited("1", "USD", moved...)
	failover := time.Since(crashed)
	eventually(t, "all partitions on the survivor", func() bool { return len(ws[0].Owned()) == 6 })
	e.deposited("1", "USD", accounts...)
	t.Logf("graceful handover: requests in moved partitions applied %s after Stop returned", handover.Round(time.Millisecond))
	t.Logf("crash failover: requests in moved partitions applied %s after the crash (member TTL %s, pinned TTL %s, ack wait %s)",
		failover.Round(time.Millisecond), e.cfg.MemberTTL, e.cfg.PinnedTTL, e.cfg.AckWait)
}

// outageStore is the real store behind a switch that makes every
// ApplyBatch fail, as a database outage does.
type outageStore struct {
	*postgres.Store
	down atomic.Bool
}

var errOutage = errors.New("connection refused (injected outage)")

func (o *outageStore) ApplyBatch(ctx context.Context, reqs []transfer.Request) ([]transfer.Outcome, error) {
	if o.down.Load() {
		return nil, errOutage
	}
	return o.Store.ApplyBatch(ctx, reqs)
}

// TestDatabaseOutage keeps the database away for longer than the ack wait:
// the worker retries the same batch and keeps its messages with progress
// signals, so nothing is redelivered, rejected or reordered; when the
// database is back everything is applied in order.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	store := &outageStore{Store: e.store}
	w := e.startWorker(e.cfg, store)
	accounts := []uuid.UUID{e.account("USD"), e.account("USD")}
	e.deposited("100", "USD", accounts...)
	store.down.Store(true)
	load := orderedLoad(accounts, 10)
	e.publish(load...)
	// Retries back off 100, 200, 400, 800 ms: five failures span more than
	// the 1s ack wait.
	eventually(t, "retries through an ack wait", func() bool {
		return counterValue(t, w.reg, "wallet_worker_apply_errors_total") >= 5
	})
	if n := counterValue(t, w.reg, "wallet_worker_redeliveries_total"); n != 0 {
		t.Fatalf("%v messages redelivered during the outage", n)
	}
	if _, found, _ := e.bus.LookupResult(ctx(t), load[0].ID); found {
		t.Fatal("an outcome was published while the database was down")
	}
	store.down.Store(false)
	for _, r := range load {
		if res := e.waitResult(r.ID); res.Status != transfer.StatusApplied {
			t.Fatalf("%s %s: %s %s", r.Kind, r.Amount, res.Status, res.Reason)
		}
	}
	if got := e.totalBalance(accounts); !got.Equal(dec("200")) {
		t.Fatalf("total %s, want 200", got)
	}
}

// TestStopDuringOutage stops a worker whose batch cannot commit: Stop
// returns when its context ends, the batch stays unacked, and the next
// worker applies it.
func TestStopDuringOutage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	store := &outageStore{Store: e.store}
	store.down.Store(true)
	cfg := e.cfg
	cfg.StopTimeout = 300 * time.Millisecond
	first := e.startWorker(cfg, store)
	a := e.account("USD")
	d := deposit(a, "7", "USD")
	e.publish(d)
	eventually(t, "a failed commit", func() bool {
		return counterValue(t, first.reg, "wallet_worker_apply_errors_total") >= 1
	})
	first.stopOnce.Do(func() {
		first.cancel()
		if err := <-first.done; !errors.Is(err, natsbus.ErrAbandoned) {
			t.Errorf("stop during an outage: %v, want %v", err, natsbus.ErrAbandoned)
		}
		first.nc.Close()
	})
	if e.transferCount(d.ID) != 0 {
		t.Fatal("applied while the database was down")
	}
	e.startWorker(e.cfg, nil)
	if r := e.waitResult(d.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("after restart: %+v", r)
	}
	if got := e.balance(a); !got.Equal(dec("7")) {
		t.Fatalf("balance %s", got)
	}
}

// TestResumesAfterServerRestart: the partition consumers keep their state
// in memory, so a restarted server has none. The worker must recreate them
// and pull again when its connection comes back, not only when the purge
// loop (here: once an hour) next looks.
func TestResumesAfterServerRestart(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) { c.PurgeInterval = time.Hour })
	e.startWorker(e.cfg, nil)
	a := e.account("USD")
	before := deposit(a, "10", "USD")
	e.publish(before)
	if r := e.waitResult(before.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("before the restart: %+v", r)
	}

	e.srv.Restart()
	after := deposit(a, "5", "USD")
	e.publish(after)
	if r := e.waitResult(after.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("after the restart: %+v", r)
	}
	if got := e.balance(a); !got.Equal(dec("15")) {
		t.Fatalf("balance %s, want 15", got)
	}
	if n := e.transferCount(before.ID); n != 1 {
		t.Fatalf("%d transfers stored for the request before the restart", n)
	}
}
