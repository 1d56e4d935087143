package worker_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// TestForeignOutcomeIsReported publishes a forged outcome under a request's
// id before the request: the worker's own outcome cannot be stored after
// it, and the worker must say so (metric, log) rather than count the
// forged one as its own. The database keeps the real decision. A replay of
// the worker's own outcome after the dedupe window is not reported.
func TestForeignOutcomeIsReported(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) { c.Streams.Duplicates = 300 * time.Millisecond })
	w := e.startWorker(e.cfg, nil)
	a := e.account("USD")

	d := deposit(a, "10", "USD")
	forged, err := natsbus.EncodeResult(natsbus.Result{V: 1, ID: d.ID, Kind: transfer.KindDeposit,
		Status: transfer.StatusRejected, Reason: transfer.CodeInsufficientFunds, AccountID: a, Amount: "10.00", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	e.publishRaw(natsbus.ResultSubject(d.ID), "", forged)
	e.publish(d)

	eventually(t, "the foreign outcome reported", func() bool {
		return counterValue(t, w.reg, "wallet_worker_foreign_outcomes_total") == 1
	})
	tr, err := e.store.GetTransfer(ctx(t), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status != transfer.StatusApplied || !e.balance(a).Equal(dec("10")) {
		t.Fatalf("database: %+v, balance %s", tr, e.balance(a))
	}

	// The worker's own outcome, published again after the dedupe window by
	// a replay, is recognised as its own.
	own := deposit(a, "1", "USD")
	e.publish(own)
	e.waitResult(own.ID)
	time.Sleep(400 * time.Millisecond)
	e.publishRaw(natsbus.RequestSubject(a, own.ID), "again-"+uuid.NewString(), mustEncode(t, own))
	eventually(t, "the replay", func() bool { return counterValue(t, w.reg, "wallet_worker_replays_total") >= 1 })
	eventually(t, "nothing pending", func() bool { return e.pendingAcks() == 0 })
	if got := counterValue(t, w.reg, "wallet_worker_foreign_outcomes_total"); got != 1 {
		t.Fatalf("foreign outcomes %v, want 1", got)
	}
}
