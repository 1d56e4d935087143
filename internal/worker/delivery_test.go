package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/transfer"
)

// TestDuplicatesAppliedOnce publishes one deposit many times: inside the
// dedupe window, as a second stored copy (a producer that changed its
// message id, or a retry after the window), after the window, and across
// a server restart. It is applied once and has one outcome.
func TestDuplicatesAppliedOnce(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) { c.Streams.Duplicates = 300 * time.Millisecond })
	w := e.startWorker(e.cfg, nil)
	a := e.account("USD")
	d := deposit(a, "10", "USD")
	subject := natsbus.RequestSubject(a, d.ID)
	body := mustEncode(t, d)

	first := e.publishRaw(subject, d.ID.String(), body)
	for i := 0; i < 5; i++ {
		if ack := e.publishRaw(subject, d.ID.String(), body); !ack.Duplicate || ack.Sequence != first.Sequence {
			t.Fatalf("copy %d inside the window stored again: %+v", i, ack)
		}
	}
	for i := 0; i < 3; i++ {
		e.publishRaw(subject, fmt.Sprintf("%s-copy-%d", d.ID, i), body)
	}
	if r := e.waitResult(d.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("outcome: %+v", r)
	}
	// After the window the stream stores the request again; the store
	// replays it.
	eventually(t, "a copy stored after the dedupe window", func() bool {
		return !e.publishRaw(subject, d.ID.String(), body).Duplicate
	})
	eventually(t, "every copy acked", func() bool { return e.pendingAcks() == 0 })

	e.srv.Restart()
	e.publishRaw(subject, d.ID.String(), body)
	marker := deposit(a, "1", "USD") // same partition, published after the copies
	e.publish(marker)
	e.waitResult(marker.ID)

	if got := e.balance(a); !got.Equal(dec("11")) {
		t.Fatalf("balance %s, want 11 (10 once, then 1)", got)
	}
	if n := e.transferCount(d.ID); n != 1 {
		t.Fatalf("%d transfers stored", n)
	}
	if n := e.resultCount(natsbus.ResultSubject(d.ID)); n != 1 {
		t.Fatalf("%d outcome messages, want 1", n)
	}
	if got := counterValue(t, w.reg, "wallet_worker_replays_total"); got < 3 {
		t.Fatalf("replays %v, want at least the 3 stored copies", got)
	}
}

// TestConflictingResubmission reuses an id with another amount: the stored
// transfer stays, the outcome subject keeps the real outcome, and a
// conflict notice names transfer_id_conflict.
func TestConflictingResubmission(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a := e.account("USD")
	d := deposit(a, "10", "USD")
	e.publish(d)
	e.waitResult(d.ID)

	other := d
	other.Amount = dec("99")
	// A fresh message id, as a producer retrying after the dedupe window would.
	e.publishRaw(natsbus.RequestSubject(a, d.ID), "other-"+d.ID.String(), mustEncode(t, other))

	var notice natsbus.Result
	eventually(t, "conflict notice", func() bool {
		s, err := e.js.Stream(ctx(t), natsbus.ResultsStream)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(ctx(t), natsbus.ConflictSubject(d.ID))
		if err != nil {
			return false
		}
		notice, err = natsbus.DecodeResult(m.Data)
		return err == nil
	})
	if notice.Status != transfer.StatusRejected || notice.Reason != transfer.CodeTransferIDConflict || notice.Amount != "99.00" {
		t.Fatalf("notice: %+v", notice)
	}
	if r := e.waitResult(d.ID); r.Status != transfer.StatusApplied || r.Amount != "10.00" {
		t.Fatalf("outcome subject changed: %+v", r)
	}
	if n := e.resultCount(natsbus.ResultSubject(d.ID)); n != 1 {
		t.Fatalf("%d outcome messages", n)
	}
	if got := e.balance(a); !got.Equal(dec("10")) {
		t.Fatalf("balance %s", got)
	}
}

// TestPerAccountOrder publishes, per account, deposits each followed by a
// withdrawal of all of it: any withdrawal applied before its deposit would
// be rejected for insufficient funds. Several accounts share partitions and
// batches are small, so order must hold across batches and merged writes.
func TestPerAccountOrder(t *testing.T) {
	t.Parallel()
	e := setupWith(t, func(c *config) { c.BatchSize = 7; c.MaxMerge = 20 })
	e.startWorker(e.cfg, nil)
	const accounts, pairs = 6, 40
	var ids []uuid.UUID
	var all []transfer.Request
	for i := 0; i < accounts; i++ {
		ids = append(ids, e.account("EUR"))
	}
	for k := 1; k <= pairs; k++ {
		for _, a := range ids {
			amount := fmt.Sprintf("%d.%02d", k, k%100)
			all = append(all, deposit(a, amount, "EUR"), withdrawal(a, amount, "EUR"))
		}
	}
	// Published asynchronously: PubAcks in any order, stream order is
	// publish order per connection.
	for _, r := range all {
		msg, err := natsbus.RequestMsg(r, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsgAsync(msg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-ctx(t).Done():
		t.Fatal("async publish did not complete")
	}
	for _, r := range all {
		if res := e.waitResult(r.ID); res.Status != transfer.StatusApplied {
			t.Fatalf("%s %s on %s: %s %s (order broken)", r.Kind, r.Amount, r.PartitionAccount(), res.Status, res.Reason)
		}
	}
	for _, a := range ids {
		if b := e.balance(a); !b.IsZero() {
			t.Fatalf("account %s balance %s, want 0", a, b)
		}
	}
}

// TestRetryOfRejectionThroughTheStream: 2020-API attempts of one id, each
// delivered more than once (copies stored under other message ids, as after
// the dedupe window or a lost ack), decide a rejected id afresh exactly
// once, and the results subject ends with the applied decision.
func TestRetryOfRejectionThroughTheStream(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.startWorker(e.cfg, nil)
	a, b := e.account("USD"), e.account("USD")
	e.deposited("5", "USD", a)

	first := xfer(a, b, "20", "USD")
	first.Attempt = uuid.New()
	e.publish(first)
	if r := e.waitResult(first.ID); r.Status != transfer.StatusRejected || r.Attempt != first.Attempt {
		t.Fatalf("first attempt: %+v", r)
	}
	subject := natsbus.RequestSubject(a, first.ID)
	// The first attempt delivered again: it replays, it is not decided anew.
	e.publishRaw(subject, natsbus.RequestMsgID(first)+"-copy", mustEncode(t, first))

	e.deposited("20", "USD", a)
	retry := first
	retry.Attempt = uuid.New()
	for i := 0; i < 3; i++ {
		e.publishRaw(subject, fmt.Sprintf("%s-copy-%d", natsbus.RequestMsgID(retry), i), mustEncode(t, retry))
	}
	eventually(t, "the retry applied", func() bool {
		r, found, err := e.bus.LookupResult(ctx(t), first.ID)
		return err == nil && found && r.Status == transfer.StatusApplied && r.Attempt == retry.Attempt
	})
	eventually(t, "every copy acked", func() bool { return e.pendingAcks() == 0 })
	if got := e.balance(a); !got.Equal(dec("5")) {
		t.Fatalf("sender balance %s, want 5 (25 - 20 once)", got)
	}
	if got := e.balance(b); !got.Equal(dec("20")) {
		t.Fatalf("receiver balance %s, want 20", got)
	}
	if n := e.resultCount(natsbus.ResultSubject(first.ID)); n != 2 {
		t.Fatalf("%d outcome messages, want 2 (the rejection, then the applied retry)", n)
	}
}
