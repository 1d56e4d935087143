package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
)

func testCtxB(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sampleTransfer() transfer.Request {
	return transfer.Request{
		ID:       uuid.New(),
		Kind:     transfer.KindTransfer,
		From:     uuid.New(),
		To:       uuid.New(),
		Amount:   decimal.RequireFromString("100.11"),
		Currency: "USD",
	}
}

func TestPublishIsFiledUnderPartitionAndFoundPending(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Setup(t, natsbus.Config{Partitions: 8})
	ctx := testCtx(t)
	bus, err := natsbus.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleTransfer()
	ack, err := bus.PublishRequest(ctx, r, "trace-1")
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate {
		t.Fatal("first publish reported as duplicate")
	}
	again, err := bus.PublishRequest(ctx, r, "")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != ack.Sequence {
		t.Fatalf("second publish: duplicate=%v seq=%d, want duplicate of %d", again.Duplicate, again.Sequence, ack.Sequence)
	}

	s, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := natsbus.CheckSubject(m.Subject, r)
	if err != nil {
		t.Fatalf("stored subject %q: %v", m.Subject, err)
	}
	if want := natsbus.PartitionOf(r.From, 8); stored.Partition != want {
		t.Fatalf("stored in partition %d, PartitionOf says %d", stored.Partition, want)
	}
	if got := m.Header.Get(natsbus.HeaderTraceID); got != "trace-1" {
		t.Fatalf("request id header %q", got)
	}

	p, found, err := bus.LookupPending(ctx, r.ID)
	if err != nil || !found {
		t.Fatalf("lookup pending: found=%v err=%v", found, err)
	}
	if !p.AcceptedAt.Equal(m.Time) || p.Fingerprint() != r.Fingerprint() {
		t.Fatalf("found %+v accepted at %v, stored %+v at %v", p, p.AcceptedAt, r, m.Time)
	}
	if _, found, err := bus.LookupPending(ctx, uuid.New()); err != nil || found {
		t.Fatalf("lookup of unknown id: found=%v err=%v", found, err)
	}

	// Same account, same partition: per-account order needs it.
	r2 := sampleTransfer()
	r2.From = r.From
	ack2, err := bus.PublishRequest(ctx, r2, "")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.GetMsg(ctx, ack2.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := natsbus.ParseStoredSubject(m2.Subject); p2.Partition != stored.Partition {
		t.Fatalf("same account in partitions %d and %d", stored.Partition, p2.Partition)
	}
}

func TestProducerCannotPickPartition(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Setup(t, natsbus.Config{Partitions: 4})
	ctx := testCtx(t)
	r := sampleTransfer()
	data, err := natsbus.EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	// A stored-form subject matches no stream.
	_, err = js.Publish(ctx, fmt.Sprintf("wallet.requests.1.%s.%s", r.ID, r.From), data)
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("publish to a 5-token subject: %v, want no responders", err)
	}
}

func TestEnsureStreamsConcurrentAndPartitionMismatch(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ctx := testCtx(t)
	cfg := natsbus.Config{Partitions: 6}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		_, js := srv.Connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := natsbus.EnsureStreams(ctx, js, cfg); err != nil {
				errs <- err
				return
			}
			errs <- natsbus.EnsureConsumers(ctx, js, natsbus.ConsumerConfig{
				Partitions: 6, MaxAckPending: 10, AckWait: time.Second, PinnedTTL: 2 * time.Second,
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent set-up: %v", err)
		}
	}
	_, js := srv.Connect(t)
	err := natsbus.EnsureStreams(ctx, js, natsbus.Config{Partitions: 7})
	if !errors.Is(err, natsbus.ErrPartitionMismatch) {
		t.Fatalf("other partition count: %v, want ErrPartitionMismatch", err)
	}
	if !strings.Contains(err.Error(), "6") || !strings.Contains(err.Error(), "7") {
		t.Fatalf("error does not name both counts: %v", err)
	}
	s, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	names := s.ConsumerNames(ctx)
	n := 0
	for range names.Name() {
		n++
	}
	if n != 6 {
		t.Fatalf("%d consumers, want 6", n)
	}
	err = natsbus.EnsureConsumers(ctx, js, natsbus.ConsumerConfig{Partitions: 6, MaxAckPending: 1, AckWait: 3 * time.Second, PinnedTTL: time.Second})
	if !errors.Is(err, natsbus.ErrInvalidConfig) {
		t.Fatalf("ack wait above pinned TTL: %v", err)
	}
}

func TestLookupResult(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Setup(t, natsbus.Config{Partitions: 2})
	ctx := testCtx(t)
	bus, err := natsbus.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, found, err := bus.LookupResult(ctx, id); err != nil || found {
		t.Fatalf("missing result: found=%v err=%v", found, err)
	}
	res := natsbus.Result{V: 1, ID: id, Kind: transfer.KindDeposit, Status: transfer.StatusApplied,
		AccountID: uuid.New(), Amount: "1.00", Currency: "USD",
		AcceptedAt: time.Now().UTC(), ProcessedAt: time.Now().UTC()}
	data, err := natsbus.EncodeResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, natsbus.ResultSubject(id), data); err != nil {
		t.Fatal(err)
	}
	got, found, err := bus.LookupResult(ctx, id)
	if err != nil || !found {
		t.Fatalf("lookup: found=%v err=%v", found, err)
	}
	if got.ID != id || got.Amount != "1.00" || got.AccountID != res.AccountID || !got.ProcessedAt.Equal(res.ProcessedAt) {
		t.Fatalf("round trip: %+v", got)
	}
}

// TestAttemptsAreStoredWithinTheDedupeWindow: a retry of a rejected id sent
// as a new attempt is stored, not dropped as a duplicate; a redelivery of
// the same attempt, like a plain request's, is dropped.
func TestAttemptsAreStoredWithinTheDedupeWindow(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Setup(t, natsbus.Config{Partitions: 4})
	ctx := testCtx(t)
	bus, err := natsbus.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	plain := sampleTransfer()
	first, second := plain, plain
	first.Attempt, second.Attempt = uuid.New(), uuid.New()
	for i, c := range []struct {
		r   transfer.Request
		dup bool
	}{{plain, false}, {plain, true}, {first, false}, {first, true}, {second, false}} {
		ack, err := bus.PublishRequest(ctx, c.r, "")
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != c.dup {
			t.Fatalf("publish %d: duplicate=%v, want %v", i, ack.Duplicate, c.dup)
		}
	}
	if got, want := natsbus.RequestMsgID(first), plain.ID.String()+"."+first.Attempt.String(); got != want {
		t.Fatalf("message id %q, want %q", got, want)
	}
}

// TestLookupPendingSkipsPoisonUnderTheID: a malformed message under an id,
// then the real request under a message id of its own, then a third under
// yet another: the lookup reports the first valid request, the one the
// workers apply, not the poison (which made the id look free) and not a
// later one.
func TestLookupPendingSkipsPoisonUnderTheID(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Setup(t, natsbus.Config{Partitions: 8})
	ctx := testCtx(t)
	bus, err := natsbus.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleTransfer()
	poison := nats.NewMsg(natsbus.RequestSubject(r.From, r.ID))
	poison.Data = []byte(`{"v":1,"kind":"transfer","id":"` + r.ID.String() + `"`)
	poison.Header.Set(natsbus.HeaderMsgID, r.ID.String())
	if _, err := js.PublishMsg(ctx, poison); err != nil {
		t.Fatal(err)
	}
	ack, err := bus.ResubmitRequest(ctx, r, "")
	if err != nil {
		t.Fatal(err)
	}
	later := r
	later.Amount = decimal.RequireFromString("7")
	m, err := natsbus.RequestMsg(later, "")
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(natsbus.HeaderMsgID, r.ID.String()+".later")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, found, err := bus.LookupPending(ctx, r.ID)
	if err != nil || !found {
		t.Fatalf("lookup: found=%v err=%v", found, err)
	}
	if got.Fingerprint() != r.Fingerprint() {
		t.Fatalf("found %+v, want the first valid request %+v", got, r)
	}
	s, err := js.Stream(ctx, natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if !got.AcceptedAt.Equal(stored.Time) {
		t.Fatalf("accepted at %v, stored %v", got.AcceptedAt, stored.Time)
	}
}
