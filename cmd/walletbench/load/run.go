package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wallet/wallet/internal/transfer"
)

// Ways to drive the load.
const (
	ViaHTTP = "http" // through the gateway
	ViaNATS = "nats" // straight into the requests stream, as a producer
	ViaSync = "sync" // the synchronous baseline alone
	// ViaLegacy sends transfers to the 2020 API's POST /transfers/, which
	// answers with the outcome, and the kinds that API lacks to the v1
	// API with Prefer: wait.
	ViaLegacy = "legacy"
)

// Ways to create the accounts.
const (
	SetupService = "service" // POST /v1/accounts
	SetupDB      = "db"      // one INSERT, for deployments without a gateway
)

// DefaultBaselineConcurrency caps the baseline's connections unless
// --baseline-concurrency says otherwise. 16 was its best here (alone: 8 ->
// 1800/s, 16 -> 1837/s, 32 -> 1533/s, docs/performance-log.md); more only
// contend for the same rows, and 128 of them beside a running service's
// pools exceed PostgreSQL's default max_connections, so the baseline's
// funding failed on refused connections.
const DefaultBaselineConcurrency = 16

// Config is one invocation of the tool. Zero fields take the defaults of
// cmd/walletbench's flags.
type Config struct {
	Via      string
	Baseline string // "" or "sync": also run the synchronous baseline
	// The service's addresses, all on this machine.
	GatewayURL  string
	NATSURL     string
	DatabaseURL string
	Token       string // bearer token for the gateway, when it wants one

	Workload WorkloadConfig
	// CurrencyCodes are the workload's currencies, their precisions read
	// from the database; default USD.
	CurrencyCodes []string

	// Concurrency is the number of HTTP connections, NATS publishing lanes
	// or baseline database connections.
	Concurrency int
	// BaselineConcurrency defaults to Concurrency, at most
	// DefaultBaselineConcurrency.
	BaselineConcurrency int
	// Rate is the open-loop target in requests per second; 0 runs closed
	// loop, each sender as fast as it goes.
	Rate float64
	// RateOfPeak, when above zero, first runs the service closed loop to
	// find its peak (requests decided per second, end to end), then
	// again open loop at this share of it. It replaces Rate.
	RateOfPeak float64
	// CPUTargets are the processes whose CPU time is reported besides
	// the whole machine's and the tool's own; nil is DefaultCPUTargets.
	CPUTargets []CPUTarget
	// NATSMode is ModeAtomic, ModeAsync or ModeSingle; Batch is the
	// requests per atomic batch or async window, Linger how long a lane
	// waits to fill one in an open loop.
	NATSMode string
	Batch    int
	Linger   time.Duration

	CreateAccounts string // SetupService or SetupDB
	// MaxDuration bounds the sending of the measured requests;
	// DrainTimeout is how long to wait for outcomes without any arriving
	// before giving up.
	MaxDuration  time.Duration
	DrainTimeout time.Duration
	// GlobalCheck adds the whole-database checks.
	GlobalCheck bool
	// RSS names processes (label -> pid) whose peak memory is recorded.
	RSS map[string]int
	// Progress receives the live status line; nil for none.
	Progress io.Writer
	// Command is the command line, for the report.
	Command string

	// beforeCheck, when set, runs between the drain and the book checks;
	// tests use it to corrupt the books.
	beforeCheck func(ctx context.Context, pool *pgxpool.Pool, accounts []uuid.UUID) error
}

// Defaults of Config.
const (
	DefaultGatewayURL  = "http://127.0.0.1:8080"
	DefaultNATSURL     = "nats://127.0.0.1:4223"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/wallet?sslmode=disable"
)

func (c Config) withDefaults() (Config, error) {
	if c.Via == "" {
		c.Via = ViaHTTP
	}
	if c.GatewayURL == "" {
		c.GatewayURL = DefaultGatewayURL
	}
	if c.NATSURL == "" {
		c.NATSURL = DefaultNATSURL
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = DefaultDatabaseURL
	}
	if len(c.CurrencyCodes) == 0 {
		c.CurrencyCodes = []string{"USD"}
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.BaselineConcurrency == 0 {
		c.BaselineConcurrency = min(c.Concurrency, DefaultBaselineConcurrency)
	}
	if c.NATSMode == "" {
		c.NATSMode = ModeAtomic
	}
	if c.Batch == 0 {
		c.Batch = 100
	}
	if c.Linger == 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.CPUTargets == nil {
		c.CPUTargets = DefaultCPUTargets
	}
	if c.CreateAccounts == "" {
		c.CreateAccounts = SetupService
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 15 * time.Minute
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = time.Minute
	}
	switch {
	case c.Via != ViaHTTP && c.Via != ViaNATS && c.Via != ViaSync && c.Via != ViaLegacy:
		return c, fmt.Errorf("via %q: want http, nats, legacy or sync", c.Via)
	case c.Baseline != "" && c.Baseline != "sync":
		return c, fmt.Errorf("baseline %q: want sync or nothing", c.Baseline)
	case c.Concurrency < 1 || c.Concurrency > 1024 || c.BaselineConcurrency < 1 || c.BaselineConcurrency > 1024:
		return c, errors.New("concurrency: want 1..1024")
	case c.Rate < 0 || c.Rate > 1_000_000:
		return c, errors.New("rate: want 0 (closed loop) to 1,000,000 per second")
	case c.RateOfPeak < 0 || c.RateOfPeak > 1:
		return c, errors.New("rate of peak: want a share from 0 to 1")
	case c.RateOfPeak > 0 && (c.Rate > 0 || c.Via == ViaSync):
		return c, errors.New("rate of peak: not with --rate, nor with --via sync")
	case c.NATSMode != ModeAtomic && c.NATSMode != ModeAsync && c.NATSMode != ModeSingle:
		return c, fmt.Errorf("nats mode %q: want atomic, async or single", c.NATSMode)
	case c.Batch < 1 || c.Batch > maxAtomicBatch:
		return c, fmt.Errorf("batch %d: want 1..%d", c.Batch, maxAtomicBatch)
	case c.Via == ViaNATS && c.NATSMode == ModeAtomic && c.Concurrency > maxAtomicInflight:
		return c, fmt.Errorf("concurrency %d: JetStream allows %d open atomic batches per stream", c.Concurrency, maxAtomicInflight)
	case c.Linger < 0 || c.Linger > time.Second:
		return c, errors.New("linger: want 0..1s")
	case c.CreateAccounts != SetupService && c.CreateAccounts != SetupDB:
		return c, fmt.Errorf("create accounts %q: want service or db", c.CreateAccounts)
	case c.MaxDuration < 0 || c.DrainTimeout < 0:
		return c, errors.New("durations must be positive")
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		if err := requireLoopback("nats url", u); err != nil {
			return c, err
		}
	}
	if err := requireLoopback("gateway url", c.GatewayURL); err != nil {
		return c, err
	}
	if err := requireLoopbackDB(c.DatabaseURL); err != nil {
		return c, err
	}
	return c, nil
}

// requireLoopback refuses addresses off this machine: the tool generates
// load and must never be pointed at someone else's service by mistake.
func requireLoopback(what, raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q: not a URL", what, raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%s %q: only loopback addresses are allowed", what, raw)
	}
	return nil
}

func requireLoopbackDB(raw string) error {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	hosts := []string{cfg.ConnConfig.Host}
	for _, fb := range cfg.ConnConfig.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, h := range hosts {
		// A path is a Unix socket: local by definition.
		if !strings.HasPrefix(h, "/") && !isLoopbackHost(h) {
			return fmt.Errorf("database url: host %q: only loopback addresses are allowed", h)
		}
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Run runs the configured workload and returns the report. A failed book
// check is in the report (Report.Passed); the error is for a run that
// could not be carried out.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{StartedAt: time.Now().UTC(), Command: cfg.Command, Machine: machine()}
	rep.LoadAvg[0] = loadAvg1()

	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pcfg.MaxConns = int32(max(cfg.BaselineConcurrency, 4) + 2)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}

	precisions, err := readPrecisions(ctx, pool)
	if err != nil {
		return nil, err
	}
	wcfg := cfg.Workload
	wcfg.Currencies = nil
	for _, code := range cfg.CurrencyCodes {
		code = transfer.NormalizeCurrency(code)
		p, ok := precisions[code]
		if !ok {
			return nil, fmt.Errorf("currency %s is not in the database's currencies table", code)
		}
		wcfg.Currencies = append(wcfg.Currencies, Currency{Code: code, Precision: p})
	}
	w, err := Generate(wcfg)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	rep.Workload = describeWorkload(w)

	var service, baseline *Result
	if cfg.Via != ViaSync && cfg.RateOfPeak > 0 {
		peak, err := runService(ctx, cfg, pool, w)
		if err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, *peak)
		service = peak
		cfg.Rate = cfg.RateOfPeak * peak.DecidedPerSec
		rep.OpenLoop = &OpenLoop{Share: cfg.RateOfPeak, PeakPerSec: peak.DecidedPerSec, Rate: cfg.Rate}
	}
	if cfg.Via != ViaSync {
		res, err := runService(ctx, cfg, pool, w)
		if err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, *res)
		if service == nil {
			service = res
		}
		if rep.OpenLoop != nil {
			rep.OpenLoop.AcceptLatency = res.AcceptLatency
		}
	}
	if cfg.Via == ViaSync || cfg.Baseline == "sync" {
		res, err := runSync(ctx, cfg, pool, w)
		if err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, *res)
		baseline = res
	}
	if service != nil && baseline != nil {
		rep.compare(*service, *baseline)
	}
	rep.LoadAvg[1] = loadAvg1()
	return rep, nil
}

// phase runs one set of requests to completion: it drives them, waits for
// their outcomes and returns the tracker and whether it drained.
type phase struct {
	label       string
	requests    func(i int) transfer.Request
	n           int
	concurrency int
	window      int
	rate        float64
	maxDuration time.Duration
	drain       time.Duration
	progress    io.Writer
	newSender   func(t *tracker) sender
	watch       func(t *tracker) // registers the tracker with the outcome reader
}

func (p phase) run(ctx context.Context, ids []uuid.UUID) (*tracker, bool) {
	t := newTracker(ids)
	if p.watch != nil {
		p.watch(t)
	}
	t.begin(time.Now())
	stop := progress(p.progress, p.label, t)
	defer stop()
	dctx, cancel := context.WithTimeout(ctx, p.maxDuration)
	drive(dctx, p.n, p.concurrency, p.window, p.rate, p.newSender(t))
	cancel()
	return t, waitDrained(ctx, t, p.drain)
}

func newIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}

func accountCurrencies(w *Workload) []string {
	out := make([]string, w.Config.Accounts)
	for i := range out {
		out[i] = w.CurrencyOf(int32(i)).Code
	}
	return out
}

// runService sets up a world through the service and drives the workload
// through it.
func runService(ctx context.Context, cfg Config, pool *pgxpool.Pool, w *Workload) (*Result, error) {
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("walletbench"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.Concurrency*cfg.Batch))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	reader, err := readOutcomes(cfg.NATSURL)
	if err != nil {
		return nil, err
	}
	defer reader.stop()

	gw := newGatewayClient(cfg.GatewayURL, cfg.Token, cfg.Concurrency)
	defer gw.close()
	prod := &producer{nc: nc, js: js, mode: cfg.NATSMode, batch: cfg.Batch, linger: cfg.Linger}
	window := 1
	if cfg.Via == ViaNATS {
		window = cfg.Batch
	}
	senderFor := func(requests func(int) transfer.Request) func(t *tracker) sender {
		return func(t *tracker) sender {
			if cfg.Via == ViaNATS {
				return prod.sender(t, requests)
			}
			return httpSender(gw, t, requests)
		}
	}
	watch := reader.watch
	if cfg.Via == ViaLegacy {
		// The answer carries the outcome: the results stream is not read,
		// so each request has one writer of its outcome.
		watch = nil
	}

	accounts := newIDs(w.Config.Accounts)
	if err := createAccounts(ctx, cfg, pool, gw, w, accounts); err != nil {
		return nil, err
	}

	fundIDs := newIDs(len(w.Funding))
	funding := phase{
		label:       "funding",
		requests:    func(i int) transfer.Request { return w.Request(w.Funding[i], fundIDs[i], accounts) },
		n:           len(w.Funding),
		concurrency: cfg.Concurrency,
		window:      window,
		maxDuration: cfg.MaxDuration,
		drain:       cfg.DrainTimeout,
		progress:    cfg.Progress,
		watch:       reader.watch,
	}
	funding.newSender = senderFor(funding.requests)
	ft, ok := funding.run(ctx, fundIDs)
	if !ok || int(ft.nApplied.Load()) != len(fundIDs) {
		return nil, fmt.Errorf("funding: %d of %d deposits applied (failed: %v; waiting: %d)",
			ft.nApplied.Load(), len(fundIDs), ft.errors(), ft.outstanding())
	}

	ids := newIDs(len(w.Ops))
	measured := phase{
		label:       cfg.Via,
		requests:    func(i int) transfer.Request { return w.RequestAt(i, ids, accounts) },
		n:           len(w.Ops),
		concurrency: cfg.Concurrency,
		window:      window,
		rate:        cfg.Rate,
		maxDuration: cfg.MaxDuration,
		drain:       cfg.DrainTimeout,
		progress:    cfg.Progress,
		watch:       watch,
	}
	measured.newSender = senderFor(measured.requests)
	if cfg.Via == ViaLegacy {
		measured.newSender = func(t *tracker) sender { return legacySender(gw, t, measured.requests) }
	}
	rss := sampleRSS(cfg.RSS)
	cpu := startCPU(cfg.CPUTargets)
	mt, drained := measured.run(ctx, ids)
	usage := cpu.finish()

	name := "service via http"
	switch cfg.Via {
	case ViaLegacy:
		name = "service via the 2020 API"
	case ViaNATS:
		name = fmt.Sprintf("service via nats (%s, %d per batch)", cfg.NATSMode, cfg.Batch)
		if cfg.NATSMode == ModeSingle {
			name = "service via nats (single publishes)"
		}
	}
	res := summarize(name, cfg.Via, mt)
	res.Concurrency, res.Rate = cfg.Concurrency, cfg.Rate
	res.PeakRSS = rss.finish()
	res.setCPU(usage)
	res.Checks, err = checkRun(ctx, cfg, pool, w, accounts, ft, mt, drained)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

func checkRun(ctx context.Context, cfg Config, pool *pgxpool.Pool, w *Workload, accounts []uuid.UUID, funding, measured *tracker, drained bool) ([]Check, error) {
	if cfg.beforeCheck != nil {
		if err := cfg.beforeCheck(ctx, pool, accounts); err != nil {
			return nil, err
		}
	}
	var checks []Check
	missing := measured.missing()
	c := Check{Name: "every accepted request got its outcome in time", OK: drained && len(missing) == 0}
	if !c.OK {
		c.Detail = fmt.Sprintf("%d accepted requests without an outcome after waiting %s with none arriving", len(missing), cfg.DrainTimeout)
	}
	checks = append(checks, c)
	obs := append(funding.observed(nil), measured.observed(func(i int) bool { return w.Ops[i].MustReject })...)
	books, err := CheckBooks(ctx, pool, BookInput{Accounts: accounts, Requests: obs, Global: cfg.GlobalCheck})
	if err != nil {
		return nil, fmt.Errorf("check books: %w", err)
	}
	return append(checks, books...), nil
}

// createAccounts creates the run's accounts through the gateway, many at a
// time, or straight in the database.
func createAccounts(ctx context.Context, cfg Config, pool *pgxpool.Pool, gw *gatewayClient, w *Workload, accounts []uuid.UUID) error {
	currencies := accountCurrencies(w)
	if cfg.CreateAccounts == SetupDB {
		return createAccountsDB(ctx, pool, accounts, currencies)
	}
	t := newTracker(accounts)
	t.begin(time.Now())
	drive(ctx, len(accounts), cfg.Concurrency, 1, 0, func(ctx context.Context, jobs <-chan job) {
		for j := range jobs {
			if ctx.Err() != nil {
				return
			}
			if err := gw.createAccount(ctx, accounts[j.i], currencies[j.i]); err != nil {
				t.markFailed(errorClass(err))
				continue
			}
			t.markAccepted(j.i, time.Now())
		}
	})
	if n := t.nAccepted.Load(); int(n) != len(accounts) {
		return fmt.Errorf("create accounts through %s: %d of %d created (failed: %v)", cfg.GatewayURL, n, len(accounts), t.errors())
	}
	return nil
}

func httpSender(gw *gatewayClient, t *tracker, requests func(int) transfer.Request) sender {
	return func(ctx context.Context, jobs <-chan job) {
		for j := range jobs {
			if ctx.Err() != nil {
				return
			}
			t.markDue(j.i, j.dueAt())
			if err := gw.submit(ctx, requests(j.i)); err != nil {
				t.markFailed(errorClass(err))
				continue
			}
			t.markAccepted(j.i, time.Now())
		}
	}
}

// answeringSender sends each request and takes its outcome from the
// answer - the 2020 API's POST and the synchronous baseline work so:
// accepted and decided are the same moment.
func answeringSender(t *tracker, requests func(int) transfer.Request, decide func(context.Context, transfer.Request) (transfer.Status, string, error)) sender {
	return func(ctx context.Context, jobs <-chan job) {
		for j := range jobs {
			if ctx.Err() != nil {
				return
			}
			t.markDue(j.i, j.dueAt())
			r := requests(j.i)
			status, reason, err := decide(ctx, r)
			now := time.Now()
			if err != nil {
				t.markFailed(errorClass(err))
				continue
			}
			t.markAccepted(j.i, now)
			t.markOutcome(r.ID, status, reason, now)
		}
	}
}

func legacySender(gw *gatewayClient, t *tracker, requests func(int) transfer.Request) sender {
	return answeringSender(t, requests, func(ctx context.Context, r transfer.Request) (transfer.Status, string, error) {
		a, err := gw.decide(ctx, r)
		return a.status, a.reason, err
	})
}

func syncSender(s *syncStore, t *tracker, requests func(int) transfer.Request) sender {
	return answeringSender(t, requests, func(ctx context.Context, r transfer.Request) (transfer.Status, string, error) {
		out, err := s.apply(ctx, r)
		return out.Status(), string(out.Reason()), err
	})
}

// runSync runs the same workload through the synchronous baseline, on
// fresh accounts of its own in the same database.
func runSync(ctx context.Context, cfg Config, pool *pgxpool.Pool, w *Workload) (*Result, error) {
	store, err := newSyncStore(ctx, pool)
	if err != nil {
		return nil, err
	}
	accounts := newIDs(w.Config.Accounts)
	if err := createAccountsDB(ctx, pool, accounts, accountCurrencies(w)); err != nil {
		return nil, err
	}
	fundIDs := newIDs(len(w.Funding))
	funding := phase{
		label:       "sync funding",
		requests:    func(i int) transfer.Request { return w.Request(w.Funding[i], fundIDs[i], accounts) },
		n:           len(w.Funding),
		concurrency: cfg.BaselineConcurrency,
		window:      1,
		maxDuration: cfg.MaxDuration,
		drain:       cfg.DrainTimeout,
		progress:    cfg.Progress,
	}
	funding.newSender = func(t *tracker) sender { return syncSender(store, t, funding.requests) }
	ft, _ := funding.run(ctx, fundIDs)
	if int(ft.nApplied.Load()) != len(fundIDs) {
		return nil, fmt.Errorf("sync funding: %d of %d deposits applied (failed: %v)", ft.nApplied.Load(), len(fundIDs), ft.errors())
	}

	ids := newIDs(len(w.Ops))
	measured := phase{
		label:       "sync",
		requests:    func(i int) transfer.Request { return w.RequestAt(i, ids, accounts) },
		n:           len(w.Ops),
		concurrency: cfg.BaselineConcurrency,
		window:      1,
		rate:        0,
		maxDuration: cfg.MaxDuration,
		drain:       cfg.DrainTimeout,
		progress:    cfg.Progress,
	}
	if cfg.Via == ViaSync {
		// Alone, the baseline follows the open loop too; as a baseline
		// it runs closed loop, to find its capacity.
		measured.rate = cfg.Rate
	}
	measured.newSender = func(t *tracker) sender { return syncSender(store, t, measured.requests) }
	rss := sampleRSS(cfg.RSS)
	cpu := startCPU(cfg.CPUTargets)
	mt, drained := measured.run(ctx, ids)
	usage := cpu.finish()
	res := summarize("sync baseline", ViaSync, mt)
	res.Concurrency, res.Rate = cfg.BaselineConcurrency, measured.rate
	res.PeakRSS = rss.finish()
	res.setCPU(usage)
	res.Checks, err = checkRun(ctx, cfg, pool, w, accounts, ft, mt, drained)
	if err != nil {
		return nil, err
	}
	if n := store.retries.Load(); n > 0 {
		res.Checks = append(res.Checks, Check{Name: "transactions retried after deadlock or serialization failure", OK: true, Detail: fmt.Sprint(n)})
	}
	return &res, nil
}
