package load

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/wallet/wallet/internal/dbtest"
	"github.com/wallet/wallet/internal/gateway"
	"github.com/wallet/wallet/internal/natsbus"
	"github.com/wallet/wallet/internal/natstest"
	"github.com/wallet/wallet/internal/postgres"
	"github.com/wallet/wallet/internal/worker"
)

// service is the whole pipeline in this process: a fresh database, an
// embedded JetStream server, one worker and the gateway on a loopback port.
type service struct {
	dbURL      string
	natsURL    string
	gatewayURL string
}

func startService(t *testing.T) service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := dbtest.URL(t)
	store, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := natstest.Start(t)
	streams := natsbus.Config{Partitions: 4}
	srv.Setup(t, streams)

	connect := func() *nats.Conn {
		nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	wnc := connect()
	c, err := natsbus.NewConsumer(wnc, natsbus.ConsumerSettings{Streams: streams, BatchSize: 100, Linger: 2 * time.Millisecond,
		StopTimeout: 20 * time.Second}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(c, store, worker.Config{}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	select {
	case <-w.Started():
	case err := <-wdone:
		stopWorker()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopWorker()
		if err := <-wdone; err != nil {
			t.Errorf("stop worker: %v", err)
		}
		wnc.Close()
	})

	gnc := connect()
	queue, err := natsbus.NewProducer(ctx, gnc, natsbus.BatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	qctx, stopQueue := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- queue.Run(qctx) }()
	g, err := gateway.New(gateway.Config{}, store, queue, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Listener(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(sctx); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("gateway: %v", err)
		}
		stopQueue()
		if err := <-queued; err != nil {
			t.Errorf("queue: %v", err)
		}
		gnc.Close()
	})
	return service{dbURL: dbURL, natsURL: srv.URL(), gatewayURL: "http://" + ln.Addr().String()}
}

func (s service) config(via string) Config {
	return Config{
		Via:         via,
		GatewayURL:  s.gatewayURL,
		NATSURL:     s.natsURL,
		DatabaseURL: s.dbURL,
		Workload:    WorkloadConfig{Accounts: 40, Requests: 300, Hot: HotCredit, Seed: 5, Funding: 20},
		Concurrency: 4,
		Batch:       25,
		GlobalCheck: true,
	}
}

func requirePassed(t *testing.T, rep *Report) {
	t.Helper()
	for _, res := range rep.Runs {
		if f := failed(res.Checks); len(f) > 0 {
			t.Fatalf("%s: checks failed: %v", res.Name, f)
		}
		if res.Accepted != 300 || res.Decided != 300 || res.Applied == 0 || res.Failed != 0 {
			t.Errorf("%s: accepted %d decided %d applied %d failed %v", res.Name, res.Accepted, res.Decided, res.Applied, res.FailedBy)
		}
		if res.RejectedBy["insufficient_funds"] == 0 {
			t.Errorf("%s: no insufficient_funds rejections: %v", res.Name, res.RejectedBy)
		}
	}
}

// TestRunEndToEnd drives small workloads through the real gateway and
// worker, over HTTP and straight into NATS in each publishing mode, plus
// the baseline, and requires every book check to pass.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("http with baseline", func(t *testing.T) {
		cfg := svc.config(ViaHTTP)
		cfg.Baseline = "sync"
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		requirePassed(t, rep)
		if len(rep.Runs) != 2 || rep.Ratio <= 0 {
			t.Errorf("runs %d, ratio %v", len(rep.Runs), rep.Ratio)
		}
	})
	for _, mode := range []string{ModeAtomic, ModeAsync, ModeSingle} {
		t.Run("nats "+mode, func(t *testing.T) {
			cfg := svc.config(ViaNATS)
			cfg.NATSMode = mode
			cfg.CreateAccounts = SetupDB
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			requirePassed(t, rep)
		})
	}
	// Holds settled HoldGap requests later, through both ways in.
	for _, via := range []string{ViaHTTP, ViaNATS} {
		t.Run("holds "+via, func(t *testing.T) {
			cfg := svc.config(via)
			cfg.Workload.Requests = HoldGap + 400
			cfg.Workload.Mix = DefaultMix
			cfg.Workload.Mix.Holds = 0.2
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := rep.Runs[0]
			if f := failed(res.Checks); len(f) > 0 {
				t.Fatalf("checks failed: %v", f)
			}
			if res.Accepted != cfg.Workload.Requests || res.Decided != res.Accepted || res.Failed != 0 || rep.Workload.Posts == 0 {
				t.Fatalf("accepted %d decided %d failed %v; workload %+v", res.Accepted, res.Decided, res.FailedBy, rep.Workload)
			}
		})
	}
	// The 2020 API answers with the outcome; the other kinds go through v1
	// with Prefer: wait. The baseline runs at the same 4 connections.
	t.Run("legacy with baseline", func(t *testing.T) {
		cfg := svc.config(ViaLegacy)
		cfg.Baseline = "sync"
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		requirePassed(t, rep)
		if len(rep.Runs) != 2 || rep.Ratio <= 0 || rep.LatencyRatio <= 0 {
			t.Fatalf("runs %d, ratio %v, latency ratio %v", len(rep.Runs), rep.Ratio, rep.LatencyRatio)
		}
		for _, res := range rep.Runs {
			if res.Concurrency != 4 || res.AcceptLatency.Count != 300 {
				t.Errorf("%s: concurrency %d, %d latencies", res.Name, res.Concurrency, res.AcceptLatency.Count)
			}
			// The measured phase read /proc: the machine was busy, and
			// the tool's own process is always among the figures.
			if res.CPU == nil || res.CPUPerApplied <= 0 || res.CPU.ProcessCounts[SelfLabel] != 1 {
				t.Errorf("%s: cpu %+v, %v ms per applied", res.Name, res.CPU, res.CPUPerApplied)
			}
		}
		if rep.CPURatio <= 0 {
			t.Errorf("cpu ratio %v", rep.CPURatio)
		}
	})
	t.Run("rate of peak", func(t *testing.T) {
		cfg := svc.config(ViaHTTP)
		cfg.RateOfPeak = 0.5
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		requirePassed(t, rep)
		if len(rep.Runs) != 2 || rep.OpenLoop == nil {
			t.Fatalf("runs %d, open loop %+v", len(rep.Runs), rep.OpenLoop)
		}
		peak, open := rep.Runs[0], rep.Runs[1]
		if peak.Rate != 0 || open.Rate != 0.5*peak.DecidedPerSec || open.Rate <= 0 || rep.OpenLoop.AcceptLatency.Count != 300 {
			t.Errorf("peak run at rate %v (%v decided/s), open loop at %v; %+v", peak.Rate, peak.DecidedPerSec, open.Rate, rep.OpenLoop)
		}
	})
	t.Run("open loop", func(t *testing.T) {
		cfg := svc.config(ViaHTTP)
		cfg.Rate = 1000
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		requirePassed(t, rep)
		// 300 requests at 1000/s take at least 0.299 s to send.
		if s := rep.Runs[0].SendSeconds; s < 0.299 {
			t.Errorf("open loop at 1000/s sent 300 requests in %.3f s", s)
		}
	})
}

// TestRunCatchesCorruptedBalance corrupts one balance after a run through
// the service and before its checks: the run must fail them.
func TestRunCatchesCorruptedBalance(t *testing.T) {
	t.Parallel()
	svc := startService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := svc.config(ViaNATS)
	cfg.beforeCheck = func(ctx context.Context, pool *pgxpool.Pool, accounts []uuid.UUID) error {
		_, err := pool.Exec(ctx, `UPDATE accounts SET balance = balance + 1 WHERE id = $1`, accounts[0])
		return err
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed() {
		t.Fatal("a corrupted balance passed the checks")
	}
	f := strings.Join(failed(rep.Runs[0].Checks), "\n")
	for _, want := range []string{"entries replay to every balance", "money conserved per currency (run)", "money conserved per currency (database)"} {
		if !strings.Contains(f, want) {
			t.Errorf("not caught by %q; failures:\n%s", want, f)
		}
	}
}
