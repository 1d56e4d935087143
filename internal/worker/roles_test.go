package worker_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	e, refused := roleEnv(t, srv)
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
	if r := refused(); len(r) > 0 {
		t.Fatalf("the server refused the workers: %v", r)
	}
}

// roleEnv is a test world on srv whose workers connect with the worker
// role's credentials; refused lists what the server refused them so far.
func roleEnv(t *testing.T, srv *natstest.Server) (e *env, refused func() []string) {
	t.Helper()
	e = &env{t: t, srv: srv, store: dbtest.NewStore(t), cfg: testConfig()}
	var mu sync.Mutex
	var denied []string
	user, pass := srv.Credentials(natsbus.RoleWorker)
	e.workerOpts = []nats.Option{
		nats.UserInfo(user, pass),
		nats.CustomInboxPrefix(natsbus.RoleWorker.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				mu.Lock()
				denied = append(denied, err.Error())
				mu.Unlock()
			}
		}),
	}
	return e, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(denied)
	}
}

// TestWorkerRoleReplacesEarlierConsumers: partition consumers made by an
// earlier version ack message by message, and the server cannot change
// an ack policy in place. A worker with the worker role's credentials
// replaces them at start-up, and again when one reappears while it runs
// (an earlier version recreating a consumer lost in a server restart);
// requests stored meanwhile are applied, and the server refuses nothing.
func TestWorkerRoleReplacesEarlierConsumers(t *testing.T) {
	t.Parallel()
	srv := natstest.StartWith(t, natstest.Options{Auth: true})
	e, refused := roleEnv(t, srv)
	// An earlier version's worker set everything up, with the same role.
	admin, adminJS := srv.ConnectAs(t, natsbus.RoleWorker)
	defer admin.Close()
	if err := natsbus.EnsureStreams(ctx(t), adminJS, e.cfg.Streams); err != nil {
		t.Fatal(err)
	}
	requests, err := adminJS.Stream(ctx(t), natsbus.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	earlier := func(p int) error {
		cfg := natsbus.PartitionConsumerConfig(natsbus.ConsumerConfig{
			Partitions: e.cfg.Streams.Partitions, MaxAckPending: e.cfg.BatchSize, AckWait: e.cfg.AckWait, PinnedTTL: e.cfg.PinnedTTL,
		}, p)
		cfg.AckPolicy = jetstream.AckExplicitPolicy
		_, err := requests.CreateOrUpdateConsumer(ctx(t), cfg)
		return err
	}
	for p := range e.cfg.Streams.Partitions {
		if err := earlier(p); err != nil {
			t.Fatalf("an earlier version's consumer %d: %v", p, err)
		}
	}
	e.nc, e.js = srv.ConnectAs(t, natsbus.RoleProducer)
	if e.bus, err = natsbus.Open(ctx(t), e.js); err != nil {
		t.Fatal(err)
	}
	acct := e.accountsIn(1, func(p int) bool { return p == 1 })[0]
	first := deposit(acct, "10", "USD")
	e.publish(first)

	ackPolicies := func() []jetstream.AckPolicy {
		var out []jetstream.AckPolicy
		for p := range e.cfg.Streams.Partitions {
			c, err := requests.Consumer(ctx(t), natsbus.ConsumerName(p))
			if err != nil {
				t.Fatalf("consumer %s: %v", natsbus.ConsumerName(p), err)
			}
			out = append(out, c.CachedInfo().Config.AckPolicy)
		}
		return out
	}
	w := e.startWorker(e.cfg, nil)
	for p, got := range ackPolicies() {
		if got != jetstream.AckAllPolicy {
			t.Errorf("partition %d after start-up: ack policy %s, want %s", p, got, jetstream.AckAllPolicy)
		}
	}
	if r := e.waitResult(first.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("deposit stored before the replacement: %+v", r)
	}

	// The earlier version recreates partition 1's consumer its own way.
	// The running worker may recreate it first, as a missing consumer:
	// then delete it again.
	eventually(t, "an earlier version's consumer of partition 1", func() bool {
		if err := requests.DeleteConsumer(ctx(t), natsbus.ConsumerName(1)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatal(err)
		}
		return earlier(1) == nil
	})
	eventually(t, "the running worker replacing the earlier consumer", func() bool {
		return ackPolicies()[1] == jetstream.AckAllPolicy
	})
	second := deposit(acct, "5", "USD")
	e.publish(second)
	if r := e.waitResult(second.ID); r.Status != transfer.StatusApplied {
		t.Fatalf("deposit after the replacement: %+v", r)
	}
	if !e.balance(acct).Equal(dec("15")) {
		t.Fatalf("balance %s, want 15", e.balance(acct))
	}
	w.stop(t)
	if r := refused(); len(r) > 0 {
		t.Fatalf("the server refused the worker: %v", r)
	}
}
