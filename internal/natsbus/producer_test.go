package natsbus_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
)

// TestProducer publishes through a running producer: a request is stored
// once and found pending, a second publish under its id is a duplicate, a
// message on its result subject reaches a watcher (one that is no result
// as an outcome without one), and after the soft stop publishes are
// refused.
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
	case o := <-outcomes:
		if o.Result.ID != uuid.Nil || o.Conflict || o.Decides(uuid.New()) {
			t.Fatalf("an unreadable message heard as %+v", o)
		}
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
	// The watchers' subscription is on the producer's connection: once
	// it is flushed, the server has it before anything nc publishes next.
	if err := p.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	publish := func(subject string) {
		t.Helper()
		if err := nc.Publish(subject, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	wake := func(c <-chan natsbus.Outcome, what string) natsbus.Outcome {
		t.Helper()
		select {
		case o := <-c:
			return o
		case <-time.After(20 * time.Second):
			t.Fatalf("no signal for %s", what)
		}
		return natsbus.Outcome{}
	}
	publish(natsbus.ConflictSubject(a))
	if o := wake(a1, "the first watcher of a conflict notice"); !o.Conflict {
		t.Fatalf("conflict notice heard as %+v", o)
	}
	if o := wake(a2, "the second watcher of a conflict notice"); !o.Conflict {
		t.Fatalf("conflict notice heard as %+v", o)
	}
	stopA1()
	stopA1()
	// b's outcome, published after a's, arrives after it on the one
	// subscription: once it is seen, a's watchers have had theirs.
	publish(natsbus.ResultSubject(a))
	publish(natsbus.ResultSubject(b))
	wake(other, "b's watcher")
	if o := wake(a2, "the remaining watcher of a"); o.Conflict {
		t.Fatalf("a result heard as a conflict notice: %+v", o)
	}
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

// TestProducerWatcherHearsTheDecision sends results through the shared
// subscription: a watcher gets the decoded result, the newest when several
// came before it looked, and a message that names another id, or is
// no result, as an outcome without a result.
func TestProducerWatcherHearsTheDecision(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, _ := srv.Setup(t, natsbus.Config{Partitions: 4})
	p := srv.StartProducer(t, natsbus.BatcherConfig{})
	ctx := testCtx(t)

	id, attempt, retry := uuid.New(), uuid.New(), uuid.New()
	decision := func(id uuid.UUID, status transfer.Status, reason transfer.Code, attempt uuid.UUID) []byte {
		t.Helper()
		data, err := natsbus.EncodeResult(natsbus.Result{V: natsbus.Version, ID: id, Kind: transfer.KindTransfer,
			Status: status, Reason: reason, FromAccountID: uuid.New(), ToAccountID: uuid.New(), Amount: "1.00",
			Currency: "USD", AcceptedAt: time.Now().UTC(), ProcessedAt: time.Now().UTC(), Attempt: attempt})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	outcomes, stop, err := p.WatchOutcome(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	sentinel := uuid.New()
	seen, stopSentinel, err := p.WatchOutcome(ctx, sentinel)
	if err != nil {
		t.Fatal(err)
	}
	defer stopSentinel()
	if err := p.Conn.Flush(); err != nil { // see TestProducerWatchersShareASubscription
		t.Fatal(err)
	}
	// hear publishes msgs in order, then waits for the sentinel's outcome,
	// published after them on the same connection: by then the watcher of
	// id holds what it will hear of them.
	hear := func(msgs ...*nats.Msg) natsbus.Outcome {
		t.Helper()
		for _, m := range append(msgs, &nats.Msg{Subject: natsbus.ResultSubject(sentinel), Data: []byte("{}")}) {
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-seen:
		case <-time.After(20 * time.Second):
			t.Fatal("the sentinel's outcome did not arrive")
		}
		select {
		case o := <-outcomes:
			return o
		default:
			t.Fatal("nothing heard")
		}
		return natsbus.Outcome{}
	}
	result := func(data []byte) *nats.Msg { return &nats.Msg{Subject: natsbus.ResultSubject(id), Data: data} }

	// A rejection of this attempt, then the id applied by a retry: the
	// newer replaces the older, which was not taken.
	o := hear(result(decision(id, transfer.StatusRejected, transfer.CodeInsufficientFunds, attempt)),
		result(decision(id, transfer.StatusApplied, "", retry)))
	if o.Conflict || o.Result.ID != id || o.Result.Status != transfer.StatusApplied || o.Result.Attempt != retry ||
		o.Result.Amount != "1.00" || !o.Decides(attempt) {
		t.Fatalf("heard %+v, want the retry's applied decision", o)
	}
	o = hear(result(decision(id, transfer.StatusRejected, transfer.CodeInsufficientFunds, attempt)))
	if o.Result.Status != transfer.StatusRejected || o.Result.Reason != transfer.CodeInsufficientFunds || !o.Decides(attempt) || o.Decides(retry) {
		t.Fatalf("heard %+v, want this attempt's rejection", o)
	}
	o = hear(result(decision(uuid.New(), transfer.StatusApplied, "", attempt)))
	if o.Result.ID != uuid.Nil || o.Decides(attempt) {
		t.Fatalf("a result naming another id heard as %+v", o)
	}
	o = hear(&nats.Msg{Subject: natsbus.ConflictSubject(id), Data: decision(id, transfer.StatusRejected, transfer.CodeTransferIDConflict, uuid.Nil)})
	if !o.Conflict || o.Decides(attempt) {
		t.Fatalf("a conflict notice heard as %+v", o)
	}
}

// TestOutcomeDecides: an attempt is answered by an applied outcome
// whichever attempt made it, and by a rejection only when it made it; a
// conflict notice and an unread message answer nothing.
func TestOutcomeDecides(t *testing.T) {
	t.Parallel()
	id, mine, other := uuid.New(), uuid.New(), uuid.New()
	res := func(status transfer.Status, attempt uuid.UUID) natsbus.Result {
		return natsbus.Result{V: natsbus.Version, ID: id, Status: status, Attempt: attempt}
	}
	for i, tc := range []struct {
		o       natsbus.Outcome
		attempt uuid.UUID
		want    bool
	}{
		{natsbus.Outcome{Result: res(transfer.StatusApplied, mine)}, mine, true},
		{natsbus.Outcome{Result: res(transfer.StatusApplied, other)}, mine, true},
		{natsbus.Outcome{Result: res(transfer.StatusApplied, uuid.Nil)}, mine, true},
		{natsbus.Outcome{Result: res(transfer.StatusRejected, mine)}, mine, true},
		{natsbus.Outcome{Result: res(transfer.StatusRejected, other)}, mine, false},
		{natsbus.Outcome{Result: res(transfer.StatusRejected, uuid.Nil)}, uuid.Nil, false},
		{natsbus.Outcome{Result: res(transfer.StatusRejected, mine), Conflict: true}, mine, false},
		{natsbus.Outcome{Result: res(transfer.StatusApplied, mine), Conflict: true}, mine, false},
		{natsbus.Outcome{}, mine, false},
	} {
		if got := tc.o.Decides(tc.attempt); got != tc.want {
			t.Errorf("case %d: Decides %v, want %v", i, got, tc.want)
		}
	}
}
