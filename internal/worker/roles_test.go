package worker_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/transfer"
)

// TestWorkerRole runs workers with the worker role's credentials, and a
// producer with the producer's, through everything a worker does on NATS:
// create the streams, consumers and membership bucket, apply and publish
// outcomes, dead-letter poison, purge applied requests, hand partitions
// over when one leaves. The server must refuse nothing.
func TestWorkerRole(t *testing.T) {
	t.Parallel()
	srv := natstest.StartWith(t, natstest.Options{Auth: true})
	e := &env{t: t, srv: srv, store: dbtest.NewStore(t), cfg: testConfig()}
	var mu sync.Mutex
	var refused []string
	user, pass := srv.Credentials(natsbus.RoleWorker)
	e.workerOpts = []nats.Option{
		nats.UserInfo(user, pass),
		nats.CustomInboxPrefix(natsbus.RoleWorker.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				mu.Lock()
				refused = append(refused, err.Error())
				mu.Unlock()
			}
		}),
	}
	// The first worker creates everything on an empty server.
	w1 := e.startWorker(e.cfg, nil)
	w2cfg := e.cfg
	w2 := e.startWorker(w2cfg, nil)
	e.nc, e.js = srv.ConnectAs(t, natsbus.RoleProducer)
	var err error
	if e.bus, err = natsbus.Open(ctx(t), e.js); err != nil {
		t.Fatal(err)
	}

	a, b := e.account("USD"), e.account("USD")
	e.deposited("100", "USD", a, b)
	t1 := xfer(a, b, "30", "USD")
	e.publish(t1)
	if r := e.waitResult(t1.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("transfer: %+v", r)
	}
	// Applied requests are purged from the requests stream.
	eventually(t, "purge of applied requests", func() bool {
		_, found, err := e.bus.LookupPending(ctx(t), t1.ID)
		return err == nil && !found
	})
	// Poison is dead-lettered (the worker publishes the copy, then
	// terminates the message).
	poison := xfer(b, a, "1", "USD")
	e.publishRaw(natsbus.RequestSubject(b, poison.ID), poison.ID.String(), []byte(`{"v":1,"kind":"nonsense"}`))
	admin, adminJS := srv.ConnectAs(t, natsbus.RoleWorker)
	defer admin.Close()
	eventually(t, "a dead letter", func() bool {
		s, err := adminJS.Stream(ctx(t), natsbus.DeadLetterStream)
		return err == nil && s.CachedInfo().State.Msgs == 1
	})

	// A worker leaves: the other takes every partition and keeps applying.
	eventually(t, "both workers owning partitions", func() bool { return len(w1.Owned()) > 0 && len(w2.Owned()) > 0 })
	w2.stop(t)
	eventually(t, "the remaining worker owning every partition", func() bool {
		return slices.Equal(w1.Owned(), []int{0, 1, 2, 3})
	})
	t2 := xfer(b, a, "130", "USD")
	e.publish(t2)
	if r := e.waitResult(t2.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("transfer after the hand-over: %+v", r)
	}
	if !e.balance(a).Equal(dec("200")) || !e.balance(b).Equal(dec("0")) {
		t.Fatalf("balances %s and %s", e.balance(a), e.balance(b))
	}
	w1.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(refused) > 0 {
		t.Fatalf("the server refused the workers: %v", refused)
	}
}
