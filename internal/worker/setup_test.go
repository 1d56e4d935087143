package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/transfer"
	"github.com/wallet/wallet/internal/worker"
)

// env is one test's world: an embedded JetStream server, a fresh database,
// and a producer connection.
type env struct {
	t     testing.TB
	srv   *natstest.Server
	store *postgres.Store
	nc    *nats.Conn
	js    jetstream.JetStream
	bus   *natsbus.Bus
	cfg   config
	// workerOpts are added to the options of every worker's connection.
	workerOpts []nats.Option
}

// config is a worker's and its consumer's settings.
type config struct {
	natsbus.ConsumerSettings
	worker.Config
}

// testConfig keeps every timer short so failovers take a second or two.
func testConfig() config {
	return config{ConsumerSettings: natsbus.ConsumerSettings{
		Streams:       natsbus.Config{Partitions: 4},
		BatchSize:     50,
		Linger:        2 * time.Millisecond,
		AckWait:       time.Second,
		PinnedTTL:     2 * time.Second,
		Heartbeat:     100 * time.Millisecond,
		MemberTTL:     700 * time.Millisecond,
		PurgeInterval: 200 * time.Millisecond,
		StopTimeout:   20 * time.Second,
	}}
}

func setup(t testing.TB) *env {
	t.Helper()
	return setupWith(t, func(*config) {})
}

// setupWith lets a test change the configuration before the streams exist.
func setupWith(t testing.TB, modify func(*config)) *env {
	t.Helper()
	e := &env{t: t, srv: natstest.Start(t), store: dbtest.NewStore(t), cfg: testConfig()}
	modify(&e.cfg)
	e.nc, e.js = e.srv.Setup(t, e.cfg.Streams)
	var err error
	if e.bus, err = natsbus.Open(ctx(t), e.js); err != nil {
		t.Fatal(err)
	}
	return e
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// running is a running worker with its own connection, so a test can cut
// it off like a crashed process.
type running struct {
	*worker.Worker
	nc       *nats.Conn
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

func (e *env) startWorker(cfg config, store worker.Store) *running {
	e.t.Helper()
	return e.startWorkerAt(cfg, store, e.srv.URL())
}

// startWorkerAt runs a worker that connects to url (the server, or a proxy
// in front of it) and returns once it pulls.
func (e *env) startWorkerAt(cfg config, store worker.Store, url string) *running {
	e.t.Helper()
	if store == nil {
		store = e.store
	}
	opts := append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, e.workerOpts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel))
	c, err := natsbus.NewConsumer(nc, cfg.ConsumerSettings, log, reg)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := worker.New(c, store, cfg.Config, log, reg)
	if err != nil {
		e.t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r := &running{Worker: w, nc: nc, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(runCtx) }()
	select {
	case <-w.Started():
	case err := <-r.done:
		cancel()
		nc.Close()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop stops the worker gracefully and closes its connection.
func (r *running) stop(t testing.TB) {
	r.stopOnce.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("stop worker %s: %v", r.ID(), err)
		}
		r.nc.Close()
	})
}

// crash cuts the worker off as a killed process would be: its connection
// drops without acking anything it holds, and nothing it does afterwards
// reaches NATS.
func (r *running) crash() {
	r.stopOnce.Do(func() {
		r.nc.Close()
		r.cancel()
		<-r.done
	})
}

func (e *env) account(currency string) uuid.UUID {
	e.t.Helper()
	id := uuid.New()
	if _, _, err := e.store.CreateAccount(ctx(e.t), id, currency); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func deposit(to uuid.UUID, amount, currency string) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindDeposit, To: to, Amount: dec(amount), Currency: currency}
}

func withdrawal(from uuid.UUID, amount, currency string) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindWithdrawal, From: from, Amount: dec(amount), Currency: currency}
}

func xfer(from, to uuid.UUID, amount, currency string) transfer.Request {
	return transfer.Request{ID: uuid.New(), Kind: transfer.KindTransfer, From: from, To: to, Amount: dec(amount), Currency: currency}
}

func (e *env) publish(reqs ...transfer.Request) {
	e.t.Helper()
	for _, r := range reqs {
		if _, err := e.bus.PublishRequest(ctx(e.t), r, "test-"+r.ID.String()[:8]); err != nil {
			e.t.Fatal(err)
		}
	}
}

// waitResult polls the results stream for id's outcome.
func (e *env) waitResult(id uuid.UUID) natsbus.Result {
	e.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		r, found, err := e.bus.LookupResult(ctx(e.t), id)
		if err != nil {
			e.t.Logf("lookup result %s: %v", id, err)
		} else if found {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no outcome for %s", id)
	return natsbus.Result{}
}

func (e *env) balance(id uuid.UUID) decimal.Decimal {
	e.t.Helper()
	a, err := e.store.GetAccount(ctx(e.t), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Balance
}

// resultCount counts the messages on a results subject.
func (e *env) resultCount(subject string) uint64 {
	e.t.Helper()
	s, err := e.js.Stream(ctx(e.t), natsbus.ResultsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx(e.t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publishRaw publishes body to a producer subject with a message id.
func (e *env) publishRaw(subject, msgID string, body []byte) *jetstream.PubAck {
	e.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = body
	if msgID != "" {
		m.Header.Set(natsbus.HeaderMsgID, msgID)
	}
	ack, err := e.js.PublishMsg(ctx(e.t), m)
	if err != nil {
		e.t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack
}

func mustEncode(t testing.TB, r transfer.Request) []byte {
	t.Helper()
	b, err := natsbus.EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deposited funds accounts through the pipeline and waits until applied.
func (e *env) deposited(amount, currency string, accounts ...uuid.UUID) {
	e.t.Helper()
	var reqs []transfer.Request
	for _, a := range accounts {
		reqs = append(reqs, deposit(a, amount, currency))
	}
	e.publish(reqs...)
	for _, r := range reqs {
		if res := e.waitResult(r.ID); res.Status != transfer.StatusApplied {
			e.t.Fatalf("deposit: %+v", res)
		}
	}
}

// transferCount counts the stored transfers with id.
func (e *env) transferCount(id uuid.UUID) int {
	e.t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(ctx(e.t), `SELECT count(*) FROM transfers WHERE id = $1`, id).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// totalBalance sums the balances of accounts.
func (e *env) totalBalance(accounts []uuid.UUID) decimal.Decimal {
	e.t.Helper()
	sum := decimal.Zero
	for _, a := range accounts {
		sum = sum.Add(e.balance(a))
	}
	return sum
}

// pendingAcks sums the messages delivered and not yet acked over all
// partition consumers.
func (e *env) pendingAcks() int {
	e.t.Helper()
	s, err := e.js.Stream(ctx(e.t), natsbus.RequestsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for p := 0; p < e.cfg.Streams.Partitions; p++ {
		c, err := s.Consumer(ctx(e.t), natsbus.ConsumerName(p))
		if err != nil {
			e.t.Fatal(err)
		}
		info := c.CachedInfo()
		n += info.NumAckPending + int(info.NumPending)
	}
	return n
}

// counterValue reads a counter (summed over its labels) from reg.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}
