package worker_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/transfer"
)

func hold(from, to uuid.UUID, amount string, timeout time.Duration) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindHold, From: from, To: to, Amount: dec(amount), Currency: "USD", Timeout: timeout}
}

// TestHoldsThroughTheStream: a hold, its post, a void, a reversal, and
// settlements filed under the wrong account, published as producers do;
// the outcomes carry kind, hold_id and reverses.
func TestHoldsThroughTheStream(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a, b := e.account("USD"), e.account("USD")
	e.deposited("100", "USD", a)

	h1, h2 := hold(a, b, "60", 0), hold(a, b, "30", time.Hour)
	post := transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: h1.ID, Amount: dec("25"), Partition: a}
	void := transfer.Request{ID: uuid.New(), Kind: transfer.KindVoid, HoldID: h2.ID, Partition: a}
	rev := transfer.Request{ID: uuid.New(), Kind: transfer.KindReversal, Reverses: post.ID, Amount: dec("5"), Partition: b}
	// Filed under the receiver: refused, since it could overtake the hold.
	wrong := transfer.Request{ID: uuid.New(), Kind: transfer.KindVoid, HoldID: h1.ID, Partition: b}
	e.publish(h1, h2, post, void, wrong)
	// The reversal is filed under the receiver's partition, which keeps no
	// order with the sender's: it is sent once the post is decided, as a
	// client would, or it may be decided first (transfer_not_found).
	e.waitResult(post.ID)
	e.publish(rev)

	for _, c := range []struct {
		req    transfer.Request
		reason transfer.Code
	}{{h1, ""}, {h2, ""}, {post, ""}, {void, ""}, {wrong, transfer.CodeSubjectAccountMismatch}, {rev, ""}} {
		res := e.waitResult(c.req.ID)
		if res.Kind != c.req.Kind || res.Reason != c.reason || res.HoldID != c.req.HoldID || res.Reverses != c.req.Reverses {
			t.Errorf("%s: %+v, want reason %q", c.req.Kind, res, c.reason)
		}
	}
	// A post of a live hold filed under the receiver changes nothing.
	h3 := hold(a, b, "10", 0)
	e.publish(h3)
	e.waitResult(h3.ID)
	wrongPost := transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: h3.ID, Partition: b}
	e.publish(wrongPost)
	if res := e.waitResult(wrongPost.ID); res.Reason != transfer.CodeSubjectAccountMismatch {
		t.Fatalf("post filed under the receiver: %+v", res)
	}
	acc, err := e.store.GetAccount(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	// 100 - 25 posted + 5 reversed; 10 still held.
	if !acc.Balance.Equal(dec("80")) || !acc.Available().Equal(dec("70")) || !e.balance(b).Equal(dec("20")) {
		t.Fatalf("a: %s/%s, b: %s", acc.Balance, acc.Available(), e.balance(b))
	}
}

// TestExpiryWhileIdle: holds with a short timeout are released by the
// sweep with no request arriving, by a worker that was not running when
// they fell due, and a post after that is refused hold_expired.
func TestExpiryWhileIdle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	cfg := e.cfg
	cfg.ExpireInterval = 50 * time.Millisecond
	cfg.ExpireBatch = 2 // several rounds for the holds below
	first := e.startWorker(cfg, nil)
	a, b := e.account("USD"), e.account("USD")
	e.deposited("100", "USD", a)

	var holds []transfer.Request
	for range 5 {
		holds = append(holds, hold(a, b, "10", time.Second))
	}
	keep := hold(a, b, "1", 0)
	e.publish(append(holds, keep)...)
	for _, h := range append(holds, keep) {
		if res := e.waitResult(h.ID); res.Status != transfer.StatusApplied {
			t.Fatalf("hold: %+v", res)
		}
	}
	eventually(t, "holds expired while idle", func() bool {
		for _, h := range holds {
			got, err := e.store.GetHold(ctx(t), h.ID)
			if err != nil || got.State != transfer.HoldStateExpired {
				return false
			}
		}
		return true
	})
	// The sweep counts a round after its transaction commits, so the count
	// may trail the rows by a moment.
	eventually(t, "the sweep counted the expired holds", func() bool {
		return counterValue(t, first.reg, "wallet_worker_holds_expired_total") >= 5
	})
	if n := counterValue(t, first.reg, "wallet_worker_holds_expired_total"); n != 5 {
		t.Fatalf("expired counter %v, want 5", n)
	}
	acc, _ := e.store.GetAccount(ctx(t), a)
	if !acc.Balance.Equal(dec("100")) || !acc.Available().Equal(dec("99")) {
		t.Fatalf("after expiry: balance %s available %s", acc.Balance, acc.Available())
	}
	late := transfer.Request{ID: uuid.New(), Kind: transfer.KindPost, HoldID: holds[0].ID, Partition: a}
	e.publish(late)
	if res := e.waitResult(late.ID); res.Reason != transfer.CodeHoldExpired {
		t.Fatalf("post after expiry: %+v", res)
	}

	// A hold that falls due while no worker runs is expired by the next.
	first.stop(t)
	h := hold(a, b, "20", time.Second)
	if _, err := e.store.ApplyBatch(ctx(t), []transfer.Request{h}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if got, _ := e.store.GetHold(ctx(t), h.ID); got.State != transfer.HoldStateHeld {
		t.Fatalf("hold %s with no worker running", got.State)
	}
	e.startWorker(cfg, nil)
	eventually(t, "hold expired after a restart", func() bool {
		got, err := e.store.GetHold(ctx(t), h.ID)
		return err == nil && got.State == transfer.HoldStateExpired
	})
	if got, _ := e.store.GetHold(ctx(t), keep.ID); got.State != transfer.HoldStateHeld {
		t.Fatalf("a hold without timeout was %s", got.State)
	}
}

// TestSweepsOfSeveralWorkers: several workers sweeping at once expire each
// hold once and release its amount once.
func TestSweepsOfSeveralWorkers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	cfg := e.cfg
	cfg.ExpireInterval = 10 * time.Millisecond
	cfg.ExpireBatch = 3
	a, b := e.account("USD"), e.account("USD")
	var reqs []transfer.Request
	reqs = append(reqs, deposit(a, "1000", "USD"))
	for range 40 {
		reqs = append(reqs, hold(a, b, "7", time.Second))
	}
	if _, err := e.store.ApplyBatch(ctx(t), reqs); err != nil {
		t.Fatal(err)
	}
	ws := []*running{e.startWorker(cfg, nil), e.startWorker(cfg, nil), e.startWorker(cfg, nil)}
	eventually(t, "every hold expired", func() bool {
		acc, err := e.store.GetAccount(ctx(t), a)
		return err == nil && acc.Available().Equal(dec("1000"))
	})
	total := 0.0
	for _, w := range ws {
		total += counterValue(t, w.reg, "wallet_worker_holds_expired_total")
	}
	acc, _ := e.store.GetAccount(ctx(t), a)
	if total != 40 || !acc.Balance.Equal(dec("1000")) {
		t.Fatalf("expired %v holds, balance %s", total, acc.Balance)
	}
}
